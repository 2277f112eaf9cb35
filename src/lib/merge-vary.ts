/** `existing` (a `vary` value) with the names of `added` it lacks appended; a `vary` of `*` stays as it is. */
export function mergeVary(existing: string | null, added: string): string {
	if (existing === null || existing.trim() === "") return added;
	const present = new Set(existing.split(",").map((name) => name.trim().toLowerCase()));
	if (present.has("*")) return existing;
	const missing = added
		.split(",")
		.map((name) => name.trim())
		.filter((name) => !present.has(name.toLowerCase()));
	return missing.length === 0 ? existing : `${existing}, ${missing.join(", ")}`;
}
