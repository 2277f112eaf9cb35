import fc from "fast-check";

/**
 * Feeds `bytes` to `push` cut at `cuts` (offsets, any order), each slice copied into one buffer
 * that is overwritten with `garbage` after its push, as the guard's pump reuses buffers: a reader
 * that kept a chunk would read the garbage.
 */
export function feedCut(bytes: Uint8Array, cuts: readonly number[], push: (chunk: Uint8Array) => void, garbage: number): void {
	const ends = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
	ends.push(bytes.length);
	const buffer = new Uint8Array(bytes.length);
	let from = 0;
	for (const end of ends) {
		const slice = buffer.subarray(0, end - from);
		slice.set(bytes.subarray(from, end));
		push(slice);
		slice.fill(garbage);
		from = end;
	}
}

/** A string's JSON text, each code point raw (where JSON allows) or as `\u` escapes in either case. */
export function written(value: string, choices: readonly number[]): string {
	let out = '"';
	let at = 0;
	for (const char of value) {
		const choice = choices[at++ % Math.max(1, choices.length)] ?? 0;
		const code = char.codePointAt(0) as number;
		if (choice === 0 && code >= 0x20 && char !== '"' && char !== "\\") out += char;
		else if (choice === 0 && (char === '"' || char === "\\")) out += `\\${char}`;
		else {
			for (let unit = 0; unit < char.length; unit++) {
				const hex = char.charCodeAt(unit).toString(16).padStart(4, "0");
				out += `\\u${choice === 2 ? hex.toUpperCase() : hex}`;
			}
		}
	}
	return `${out}"`;
}

/** Generated JSON text of the strings `value` makes, written in every way {@link written} can. */
export const jsonText = (value: fc.Arbitrary<string>) =>
	fc.tuple(value, fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 6 })).map(([string, choices]) => written(string, choices));
