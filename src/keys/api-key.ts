import { randomBase62 } from "../lib/base62";

/** Every key the guard issues starts with this, so leaked keys are easy to recognise and scan for. */
export const API_KEY_PREFIX = "sk-guard-";
const KEY_RANDOM_CHARS = 40;

/** A new API key: the prefix and 40 base62 characters (about 238 bits) from a CSPRNG. */
export function generateApiKey(): string {
	return API_KEY_PREFIX + randomBase62(KEY_RANDOM_CHARS);
}

/** A new key ID, safe to log and show: `key_` and 16 base62 characters. */
export function newKeyId(): string {
	return `key_${randomBase62(16)}`;
}

/** The SHA-256 of a key, in hex: the only form in which a key is stored. */
export async function hashApiKey(key: string): Promise<string> {
	const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key)));
	let hex = "";
	for (const byte of digest) hex += HEX[byte];
	return hex;
}

/** Each byte's two hex digits. */
const HEX: readonly string[] = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));
