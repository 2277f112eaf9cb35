import { BASE62 as ALPHABET, randomBase62 } from "../lib/base62";

const TIME_CHARS = 8;
const RANDOM_CHARS = 16;

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
