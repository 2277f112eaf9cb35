/** A timer that can be awaited, raced and cleared. */
export interface Deadline {
	/** Resolves when the time is up; never rejects. */
	readonly expired: Promise<"expired">;
	clear(): void;
}

/** Starts a {@link Deadline} of `ms` milliseconds. */
export function deadline(ms: number): Deadline {
	let resolveExpired: (value: "expired") => void = () => undefined;
	const expired = new Promise<"expired">((resolve) => {
		resolveExpired = resolve;
	});
	const timer = setTimeout(() => resolveExpired("expired"), ms);
	return { expired, clear: () => clearTimeout(timer) };
}
