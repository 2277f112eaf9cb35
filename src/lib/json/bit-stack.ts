/**
 * A stack of bits that grows with the deepest level set: one bit a level, so nesting a million
 * levels deep costs 125 KB, and the first 32 levels cost no allocation at all. The tokenizer keeps
 * one bit per open container (set for an array), so depth is bounded only by the body's length.
 */
export class BitStack {
	/** Levels 0 to 31, in a number: most bodies never nest deeper. */
	#low = 0;
	/** Levels from 32 on, 32 to a word; allocated when first needed. */
	#words: Int32Array | undefined;

	/** The bit at `level` (0 is the bottom); false where none was set. */
	get(level: number): boolean {
		if (level < 32) return ((this.#low >>> level) & 1) === 1;
		return (((this.#words?.[wordOf(level)] ?? 0) >>> (level & 31)) & 1) === 1;
	}

	/** Sets or clears the bit at `level`, growing the stack when `level` is past its end. */
	set(level: number, bit: boolean): void {
		if (level < 32) {
			this.#low = bit ? this.#low | (1 << level) : this.#low & ~(1 << level);
			return;
		}
		const index = wordOf(level);
		let words = this.#words ?? new Int32Array(8);
		if (index >= words.length) {
			const grown = new Int32Array(Math.max(words.length * 2, index + 1));
			grown.set(words);
			words = grown;
		}
		this.#words = words;
		const mask = 1 << (level & 31);
		words[index] = bit ? (words[index] as number) | mask : (words[index] as number) & ~mask;
	}

	/** Bytes held beyond the object itself, for tests of the scanner's memory. */
	get bytes(): number {
		return this.#words?.byteLength ?? 0;
	}
}

/** The word of `#words` that holds `level` (32 or more). */
function wordOf(level: number): number {
	// A shift is the fast path; past 2^32 levels (a body of over 4 GiB) it would wrap, so divide.
	// `level & 31` is exact at any safe integer: ToInt32 keeps the low bits.
	return (level < 0x1_0000_0000 ? level >>> 5 : Math.floor(level / 32)) - 1;
}
