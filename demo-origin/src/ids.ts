const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/** The largest multiple of 62 that fits a byte: bytes at or above it are redrawn, so no bias. */
const UNBIASED_LIMIT = 248;

/** `length` base62 characters drawn from `crypto.getRandomValues`. */
export function randomBase62(length: number): string {
	let out = "";
	const bytes = new Uint8Array(length * 2);
	while (out.length < length) {
		crypto.getRandomValues(bytes);
		for (const byte of bytes) {
			if (byte < UNBIASED_LIMIT) out += ALPHABET[byte % 62];
			if (out.length === length) break;
		}
	}
	return out;
}

/** A new object ID in the API's style: `prefix` + `_` + 24 base62 characters (`msg_…`, `file_…`). */
export function newId(prefix: string): string {
	return `${prefix}_${randomBase62(24)}`;
}

/** The current time as an RFC 3339 string, the form every `*_at` field uses. */
export function nowRfc3339(offsetMs = 0): string {
	return new Date(Date.now() + offsetMs).toISOString();
}
