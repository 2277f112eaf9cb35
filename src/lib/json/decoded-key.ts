/**
 * An object key decoded from its JSON text into UTF-8, as keys are compared after `JSON.parse`,
 * up to a fixed capacity: a key longer than the longest key a reader wants cannot match one, so
 * its bytes need not be kept.
 */
export class DecodedKey {
	readonly #bytes: Uint8Array;
	#length = 0;
	/** A high surrogate from a `\u` escape, waiting for its low half; 0 when none. */
	#highSurrogate = 0;

	constructor(capacity: number) {
		this.#bytes = new Uint8Array(capacity);
	}

	/** Starts a new key. */
	reset(): void {
		this.#length = 0;
		this.#highSurrogate = 0;
	}

	/**
	 * Appends a byte of the key's UTF-8 (a raw byte, or one a short escape stands for); false when
	 * the key can no longer match: over capacity, or after a lone high surrogate.
	 */
	byte(byte: number): boolean {
		if (this.#highSurrogate !== 0 || this.#length === this.#bytes.length) return false;
		this.#bytes[this.#length++] = byte;
		return true;
	}

	/**
	 * Appends a UTF-16 code unit from a `\u` escape, as UTF-8; false when the key can no longer
	 * match (too long, or a lone surrogate, which no well-formed wanted key holds).
	 */
	unit(unit: number): boolean {
		const high = this.#highSurrogate;
		if (high !== 0) {
			this.#highSurrogate = 0;
			if (unit < 0xdc00 || unit > 0xdfff) return false;
			const point = 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00);
			return this.byte(0xf0 | (point >> 18)) && this.byte(0x80 | ((point >> 12) & 0x3f)) && this.byte(0x80 | ((point >> 6) & 0x3f)) && this.byte(0x80 | (point & 0x3f));
		}
		if (unit >= 0xd800 && unit <= 0xdbff) {
			if (this.#length + 4 > this.#bytes.length) return false;
			this.#highSurrogate = unit;
			return true;
		}
		if (unit >= 0xdc00 && unit <= 0xdfff) return false;
		if (unit < 0x80) return this.byte(unit);
		if (unit < 0x800) return this.byte(0xc0 | (unit >> 6)) && this.byte(0x80 | (unit & 0x3f));
		return this.byte(0xe0 | (unit >> 12)) && this.byte(0x80 | ((unit >> 6) & 0x3f)) && this.byte(0x80 | (unit & 0x3f));
	}

	/** False while a high surrogate waits for its low half: the key then ends in a lone surrogate. */
	get whole(): boolean {
		return this.#highSurrogate === 0;
	}

	/** Whether the decoded key is exactly `key` (UTF-8). */
	equals(key: Uint8Array): boolean {
		const length = this.#length;
		if (key.length !== length) return false;
		for (let at = 0; at < length; at++) if (key[at] !== this.#bytes[at]) return false;
		return true;
	}
}
