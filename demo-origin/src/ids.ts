import { randomBase62 } from "../../src/lib/base62";

/** A new object ID in the API's style: `prefix` + `_` + 24 base62 characters (`msg_…`, `file_…`). */
export function newId(prefix: string): string {
	return `${prefix}_${randomBase62(24)}`;
}

/** The current time as an RFC 3339 string, the form every `*_at` field uses. */
export function nowRfc3339(offsetMs = 0): string {
	return new Date(Date.now() + offsetMs).toISOString();
}
