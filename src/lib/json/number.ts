/**
 * Significant digits kept of a number. Correct rounding to a double never needs more than 767;
 * digits past the limit only tell whether the tail is non-zero, which one sticky digit preserves.
 */
const SIGNIFICANT_DIGITS = 800;
/** Past these powers of ten every mantissa of at most 801 digits is already 0 or Infinity. */
const SCALE_BOUND = 100_000;

/** A JSON number as its significant digits (ASCII) and a power of ten, read by {@link NumberReader}. */
export class DecimalNumber {
	#digits: Uint8Array | undefined;
	#length = 0;
	#scale = 0;
	#negative = false;

	/** Copies what a reader holds once its number has ended. */
	copyFrom(reader: NumberReader): void {
		const digits = reader.digits;
		let length = reader.digitCount;
		let scale = reader.scale();
		this.#digits ??= new Uint8Array(SIGNIFICANT_DIGITS + 1);
		if (digits !== undefined) this.#digits.set(digits.subarray(0, length));
		if (reader.sticky) {
			this.#digits[length++] = 0x31;
			scale--;
		}
		this.#length = length;
		this.#scale = Math.max(-SCALE_BOUND, Math.min(SCALE_BOUND, scale));
		this.#negative = reader.negative;
	}

	/** The double `JSON.parse` gives the number: `Number()` rounds the kept digits the same way. */
	value(): number {
		const sign = this.#negative ? "-" : "";
		if (this.#digits === undefined || this.#length === 0) return Number(`${sign}0`);
		return Number(`${sign}${String.fromCharCode(...this.#digits.subarray(0, this.#length))}e${this.#scale}`);
	}
}

/**
 * Reads a JSON number digit by digit as it streams past, whatever its length: it keeps
 * significant digits and a decimal scale, holds zeros back until a non-zero digit follows, drops
 * digits past {@link SIGNIFICANT_DIGITS} (remembering whether any was non-zero), and saturates the
 * exponent far beyond where every double has underflowed or overflowed. The tokenizer checks the
 * syntax; this only accumulates.
 */
export class NumberReader {
	digits: Uint8Array | undefined;
	digitCount = 0;
	negative = false;
	/** Whether a non-zero digit was dropped past the kept ones. */
	sticky = false;
	#pendingZeros = 0;
	#droppedDigits = 0;
	#fractionDigits = 0;
	#exponentNegative = false;
	#exponent = 0;

	/** Starts a number; `negative` when it begins with `-`. */
	start(negative: boolean): void {
		this.negative = negative;
		this.digitCount = 0;
		this.#pendingZeros = 0;
		this.#droppedDigits = 0;
		this.sticky = false;
		this.#fractionDigits = 0;
		this.#exponentNegative = false;
		this.#exponent = 0;
	}

	/** A digit of the integer part, or of the fraction when `inFraction`. */
	digit(digit: number, inFraction: boolean): void {
		if (inFraction) this.#fractionDigits++;
		if (digit === 0) {
			if (this.digitCount > 0) this.#pendingZeros++;
			return;
		}
		this.digits ??= new Uint8Array(SIGNIFICANT_DIGITS);
		if (this.#pendingZeros > 0) {
			const zeros = Math.min(this.#pendingZeros, SIGNIFICANT_DIGITS - this.digitCount);
			this.digits.fill(0x30, this.digitCount, this.digitCount + zeros);
			this.digitCount += zeros;
			this.#droppedDigits += this.#pendingZeros - zeros;
			this.#pendingZeros = 0;
		}
		if (this.digitCount < SIGNIFICANT_DIGITS) this.digits[this.digitCount++] = 0x30 + digit;
		else {
			this.#droppedDigits++;
			this.sticky = true;
		}
	}

	/** The exponent's sign, when it has one. */
	exponentSign(negative: boolean): void {
		this.#exponentNegative = negative;
	}

	/** A digit of the exponent. */
	exponentDigit(digit: number): void {
		if (this.#exponent < 1e9) this.#exponent = this.#exponent * 10 + digit;
	}

	/** The power of ten the kept digits are scaled by (before a sticky digit is appended). */
	scale(): number {
		return (this.#exponentNegative ? -this.#exponent : this.#exponent) - this.#fractionDigits + this.#droppedDigits + this.#pendingZeros;
	}
}
