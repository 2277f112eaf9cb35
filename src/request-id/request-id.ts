/** Base62 in ASCII order, so that IDs compare as strings in the order of their numbers. */
const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const TIME_CHARS = 8;
const RANDOM_CHARS = 16;
/** The largest multiple of 62 that fits a byte: bytes at or above it are redrawn, so no bias. */
const UNBIASED_LIMIT = 248;

/** The shape of every ID the guard issues: `req_` and 24 base62 characters. */
export const REQUEST_ID_PATTERN = /^req_[0-9A-Za-z]{24}$/;

/**
 * A new request ID: `req_`, then 8 base62 characters of the creation time in milliseconds (fixed
 * width, so IDs sort by creation time until the year 8888), then 16 base62 characters from
 * `crypto.getRandomValues` (about 95 bits), which is what makes an ID unguessable.
 */
export function newRequestId(now: number = Date.now()): string {
	let time = "";
	let rest = Math.max(0, Math.floor(now));
	for (let i = 0; i < TIME_CHARS; i++) {
		time = ALPHABET[rest % 62] + time;
		rest = Math.floor(rest / 62);
	}
	return `req_${time}${randomBase62(RANDOM_CHARS)}`;
}

/** The creation time encoded in an ID the guard issued, in milliseconds since the epoch. */
export function requestIdTime(id: string): number {
	let value = 0;
	for (const char of id.slice(4, 4 + TIME_CHARS)) value = value * 62 + ALPHABET.indexOf(char);
	return value;
}

function randomBase62(length: number): string {
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
