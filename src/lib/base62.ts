/** Base62 in ASCII order, so that strings of it compare in the order of their numbers. */
export const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/** The largest multiple of 62 that fits a byte: bytes at or above it are redrawn, so no bias. */
const UNBIASED_LIMIT = 248;

/** `length` base62 characters from `crypto.getRandomValues`, without modulo bias. */
export function randomBase62(length: number): string {
	let out = "";
	const bytes = new Uint8Array(length * 2);
	while (out.length < length) {
		crypto.getRandomValues(bytes);
		for (const byte of bytes) {
			if (byte < UNBIASED_LIMIT) out += BASE62[byte % 62];
			if (out.length === length) break;
		}
	}
	return out;
}
