import { parseJsonObject } from "../lib/parse-json";

/** What the key store holds for one API key; never the key itself. */
export interface KeyRecord {
	/** Hex SHA-256 of the key. */
	hash: string;
	id: string;
	org_id: string;
	workspace_id: string | null;
	name: string;
	/** Route groups the key may use (`messages`, `batches`, `files`, `models`). */
	scopes: string[];
	status: "active" | "disabled";
	/** RFC 3339. */
	created_at: string;
}

const HASH = /^[0-9a-f]{64}$/;

/** Reads a stored record, or `undefined` when the stored value is not a whole, valid record. */
export function parseKeyRecord(text: string | null): KeyRecord | undefined {
	const value = text === null ? undefined : parseJsonObject(text);
	if (value === undefined) return undefined;
	const record = value as Partial<KeyRecord>;
	const ok =
		typeof record.hash === "string" &&
		HASH.test(record.hash) &&
		typeof record.id === "string" &&
		typeof record.org_id === "string" &&
		(record.workspace_id === null || typeof record.workspace_id === "string") &&
		typeof record.name === "string" &&
		Array.isArray(record.scopes) &&
		record.scopes.every((scope) => typeof scope === "string") &&
		(record.status === "active" || record.status === "disabled") &&
		typeof record.created_at === "string";
	return ok ? (record as KeyRecord) : undefined;
}

/** KV key of a record, by the key's hash. */
export function recordKey(hash: string): string {
	return `key:${hash}`;
}

/** KV key of the index entry from a key ID to the key's hash (for list, disable, delete). */
export function idKey(id: string): string {
	return `id:${id}`;
}
