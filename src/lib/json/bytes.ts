/** Byte tables and small byte-level helpers shared by the JSON tokenizer's parts. */

export const QUOTE = 0x22;
export const BACKSLASH = 0x5c;

/** The byte a one-character escape stands for, by the byte after the backslash; 0 where there is none. */
export const SIMPLE_ESCAPES = new Uint8Array(256);
for (const [letter, byte] of [
	['"', 0x22],
	["\\", 0x5c],
	["/", 0x2f],
	["b", 0x08],
	["f", 0x0c],
	["n", 0x0a],
	["r", 0x0d],
	["t", 0x09],
] as const)
	SIMPLE_ESCAPES[letter.charCodeAt(0)] = byte;

/** The value of a hex digit by its byte; -1 for other bytes. */
export const HEX = new Int8Array(256).fill(-1);
for (let digit = 0; digit < 16; digit++) {
	HEX[digit.toString(16).charCodeAt(0)] = digit;
	HEX[digit.toString(16).toUpperCase().charCodeAt(0)] = digit;
}

/** JSON's four whitespace bytes. */
export function isWhitespace(byte: number): boolean {
	return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

/** The length of the valid escape at `at` when it lies whole in the chunk; 0 otherwise, for the state machine to handle. */
export function wholeEscapeLength(chunk: Uint8Array, at: number): number {
	if (at + 1 >= chunk.length) return 0;
	const letter = chunk[at + 1] as number;
	if (SIMPLE_ESCAPES[letter] !== 0) return 2;
	if (letter !== 0x75 || at + 5 >= chunk.length) return 0;
	const digits = (HEX[chunk[at + 2] as number] as number) | (HEX[chunk[at + 3] as number] as number) | (HEX[chunk[at + 4] as number] as number) | (HEX[chunk[at + 5] as number] as number);
	return digits < 0 ? 0 : 6;
}

/** Where `byte` next occurs in the chunk from `from`; the chunk's length when it does not. */
export function indexOrEnd(chunk: Uint8Array, byte: number, from: number): number {
	const at = chunk.indexOf(byte, from);
	return at < 0 ? chunk.length : at;
}
