/** A top-level value as {@link scanTopLevelFields} saw it. `other` is an object, an array, or a string too long to capture. */
export type ScannedValue =
	| { kind: "number"; value: number }
	| { kind: "boolean"; value: boolean }
	| { kind: "null" }
	| { kind: "string"; value: string }
	| { kind: "other" };

/** An incremental scan of a JSON body for some of its top-level fields; see {@link scanTopLevelFields}. */
export interface FieldScan {
	/** Feeds the next bytes of the body. Never throws on bad JSON: it marks the scan invalid. */
	push(chunk: Uint8Array): void;
	/** The body ended. */
	end(): void;
	/** Values found so far for the wanted top-level keys (last occurrence wins, as JSON.parse). */
	readonly fields: ReadonlyMap<string, ScannedValue>;
	/**
	 * `complete`: the top-level object closed and only whitespace may follow. `invalid`: not a JSON
	 * object, a syntax error, trailing garbage, nesting deeper than {@link MAX_DEPTH}, or a body that
	 * ended before its object closed. Once `invalid`, further bytes are ignored.
	 */
	readonly state: "scanning" | "complete" | "invalid";
}

/** Nesting deeper than this marks a body invalid, so the depth stack stays small. */
export const MAX_DEPTH = 10_000;
/** A string value whose JSON text (between the quotes) is longer than this is reported as `other`. */
export const STRING_CAPTURE_LIMIT = 256;
/**
 * Significant digits kept of a number. Correct rounding to a double never needs more than 767;
 * digits past the limit only tell whether the tail is non-zero, which one sticky digit preserves.
 */
const SIGNIFICANT_DIGITS = 800;

/**
 * Scans a JSON body as it streams past, for the values of the `wanted` keys of its top-level
 * object, in memory that does not grow with the body: nothing nested is stored, keys are decoded
 * only at the top level and only as long as the longest wanted key, and values only for wanted
 * keys. Chunks are not retained, so a caller may reuse a buffer once `push` returns.
 *
 * It agrees with `JSON.parse(new TextDecoder().decode(body))`, as `Request.json()` reads a body:
 * keys are compared after their escapes are decoded, numbers of any length get the value JSON.parse
 * gives them, and invalid UTF-8 reads as U+FFFD. Where it differs:
 * - it is lenient where other parsers are, since a guard stricter than its origin can be evaded: a
 *   leading UTF-8 byte-order mark is skipped (as `Request.json()` does) and raw control characters
 *   inside strings are accepted;
 * - nesting deeper than {@link MAX_DEPTH} is invalid, to keep the depth stack bounded;
 * - a string longer than {@link STRING_CAPTURE_LIMIT} bytes of JSON text is `other`;
 * - wanted keys are taken to be well-formed text without U+FFFD: a body key holding a lone
 *   surrogate or invalid UTF-8 matches none.
 */
export function scanTopLevelFields(wanted: readonly string[]): FieldScan {
	return new TopLevelScanner(wanted);
}

// The scanner's states. START to DONE, the states between tokens, must stay a range: whitespace
// is skipped for all of them at once.
const BOM = 0;
const BOM_BB = 1;
const BOM_BF = 2;
const START = 3;
const OBJECT_OPEN = 4;
const KEY = 5;
const COLON = 6;
const VALUE = 7;
const ARRAY_OPEN = 8;
const AFTER_VALUE = 9;
const DONE = 10;
const INVALID = 11;
const STRING = 12;
const ESCAPE = 13;
const UNICODE = 14;
const NUMBER_MINUS = 15;
const NUMBER_ZERO = 16;
const NUMBER_INT = 17;
const NUMBER_DOT = 18;
const NUMBER_FRACTION = 19;
const NUMBER_E = 20;
const NUMBER_E_SIGN = 21;
const NUMBER_EXPONENT = 22;
const LITERAL = 23;

// What happens to the bytes of the current string.
const SKIP = 0;
const DECODE_KEY = 1;
const CAPTURE = 2;

// What a wanted key's slot holds (0 until a value is seen).
const NUMBER = 1;
const TRUE = 2;
const FALSE = 3;
const NULL = 4;
const TEXT = 5;
const OTHER = 6;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
/** Bytes of a string checked one by one before the search switches to `indexOf`, whose call costs more than a short string. */
const SHORT_SCAN = 64;

const ENCODER = new TextEncoder();
// ignoreBOM keeps a U+FEFF that begins a captured string: it is the string's, not the body's.
const DECODER = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

const LITERALS = [ENCODER.encode("true"), ENCODER.encode("false"), ENCODER.encode("null")] as const;
const LITERAL_KINDS = [TRUE, FALSE, NULL] as const;

/** The byte a one-character escape stands for, by the byte after the backslash; 0 where there is none. */
const SIMPLE_ESCAPES = new Uint8Array(256);
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
const HEX = new Int8Array(256).fill(-1);
for (let digit = 0; digit < 16; digit++) {
	HEX[digit.toString(16).charCodeAt(0)] = digit;
	HEX[digit.toString(16).toUpperCase().charCodeAt(0)] = digit;
}

const HEX_DIGITS = ENCODER.encode("0123456789abcdef");

/** The last value seen for a wanted key, kept as bytes until `fields` is read. */
interface Slot {
	readonly name: string;
	/** The key in UTF-8, as body keys are compared. */
	readonly key: Uint8Array;
	kind: number;
	/** A number's significant digits, or a string's JSON text; allocated on first use. */
	bytes: Uint8Array | undefined;
	length: number;
	/** A number's power of ten. */
	scale: number;
	negative: boolean;
	dirty: boolean;
}

class TopLevelScanner implements FieldScan {
	readonly #slots: Slot[];
	readonly #map = new Map<string, ScannedValue>();
	#dirty = false;

	#lex = BOM;
	#depth = 0;
	/**
	 * One bit a level, 32 to a word: set where the container is an array. It grows with the depth
	 * reached, up to MAX_DEPTH / 32 words, so a shallow body does not pay for the deepest.
	 */
	readonly #arrays: number[] = [];
	#inArray = false;
	#mode = SKIP;
	#stringIsKey = false;
	/** The wanted key whose value is being read, by index; -1 for any other key. */
	#keyIndex = -1;

	readonly #key: Uint8Array;
	#keyLength = 0;
	/** A high surrogate from a `\u` escape in a key, waiting for its low half; 0 when none. */
	#highSurrogate = 0;
	#unit = 0;
	#hexDigits = 0;

	#capture: Uint8Array | undefined;
	#captureLength = 0;

	#literal: Uint8Array = LITERALS[0];
	#literalKind: number = TRUE;
	#literalAt = 0;

	#numberCaptured = false;
	#negative = false;
	#digits: Uint8Array | undefined;
	#digitCount = 0;
	#pendingZeros = 0;
	#droppedDigits = 0;
	#sticky = false;
	#fractionDigits = 0;
	#exponentNegative = false;
	#exponent = 0;

	constructor(wanted: readonly string[]) {
		this.#slots = [...new Set(wanted)].map((name) => ({
			name,
			key: encodedKey(name),
			kind: OTHER,
			bytes: undefined,
			length: 0,
			scale: 0,
			negative: false,
			dirty: false,
		}));
		this.#key = new Uint8Array(Math.max(0, ...this.#slots.map((slot) => slot.key.length)));
	}

	get state(): FieldScan["state"] {
		if (this.#lex === DONE) return "complete";
		return this.#lex === INVALID ? "invalid" : "scanning";
	}

	get fields(): ReadonlyMap<string, ScannedValue> {
		if (this.#dirty) {
			this.#dirty = false;
			for (const slot of this.#slots) {
				if (!slot.dirty) continue;
				slot.dirty = false;
				this.#map.set(slot.name, materialize(slot));
			}
		}
		return this.#map;
	}

	end(): void {
		if (this.#lex !== DONE) this.#lex = INVALID;
	}

	push(chunk: Uint8Array): void {
		let lex = this.#lex;
		if (lex === INVALID) return;
		let depth = this.#depth;
		let inArray = this.#inArray;
		let mode = this.#mode;
		const n = chunk.length;
		let i = 0;
		// Where the next quote and backslash of this chunk are, once searched for: each search starts
		// past the last one's find, so a chunk is searched through about once, however many strings.
		let quoteAt = -1;
		let backslashAt = -1;
		scan: while (i < n) {
			if (lex === STRING && mode === SKIP) {
				// Skipped strings are most of a large body, so they bypass the state machine: find the
				// next quote or backslash, and step over escapes that lie whole in this chunk.
				for (;;) {
					const limit = Math.min(i + SHORT_SCAN, n);
					let b = chunk[i] as number;
					while (b !== QUOTE && b !== BACKSLASH && ++i < limit) b = chunk[i] as number;
					if (i === limit) {
						if (i === n) break scan;
						if (quoteAt < i) quoteAt = indexOrEnd(chunk, QUOTE, i);
						if (backslashAt < i) backslashAt = indexOrEnd(chunk, BACKSLASH, i);
						i = Math.min(quoteAt, backslashAt);
						if (i === n) break scan;
						b = chunk[i] as number;
					}
					if (b === QUOTE) break;
					const escaped = wholeEscapeLength(chunk, i);
					if (escaped === 0) break;
					i += escaped;
					if (i === n) break scan;
				}
			} else if (lex >= START && lex <= DONE) {
				// Whitespace is skipped here, so the structural states below never see it.
				while (isWhitespace(chunk[i] as number)) if (++i === n) break scan;
			}
			const b = chunk[i] as number;
			switch (lex) {
				case STRING:
					if (b === QUOTE) {
						if (this.#stringIsKey) {
							if (depth === 1) this.#keyIndex = mode === DECODE_KEY && this.#highSurrogate === 0 ? this.#matchKey() : -1;
							lex = COLON;
						} else {
							if (depth === 1 && this.#keyIndex >= 0) this.#commitString(mode === CAPTURE);
							lex = AFTER_VALUE;
						}
						mode = SKIP;
					} else if (b === BACKSLASH) {
						if (mode === CAPTURE && !this.#captureByte(b)) mode = SKIP;
						lex = ESCAPE;
					} else if (mode === DECODE_KEY) {
						if (this.#highSurrogate !== 0 || !this.#keyByte(b)) mode = SKIP;
					} else if (mode === CAPTURE) {
						if (!(b < 0x20 ? this.#captureControl(b) : this.#captureByte(b))) mode = SKIP;
					}
					break;
				case ESCAPE: {
					if (b === 0x75) {
						this.#unit = 0;
						this.#hexDigits = 0;
						lex = UNICODE;
					} else {
						const byte = SIMPLE_ESCAPES[b] as number;
						if (byte === 0) {
							lex = INVALID;
							continue;
						}
						if (mode === DECODE_KEY && (this.#highSurrogate !== 0 || !this.#keyByte(byte))) mode = SKIP;
						lex = STRING;
					}
					if (mode === CAPTURE && !this.#captureByte(b)) mode = SKIP;
					break;
				}
				case UNICODE: {
					const digit = HEX[b] as number;
					if (digit < 0) {
						lex = INVALID;
						continue;
					}
					if (mode === CAPTURE && !this.#captureByte(b)) mode = SKIP;
					this.#unit = this.#unit * 16 + digit;
					if (++this.#hexDigits === 4) {
						if (mode === DECODE_KEY && !this.#keyUnit(this.#unit)) mode = SKIP;
						lex = STRING;
					}
					break;
				}
				case AFTER_VALUE:
					if (b === 0x2c) lex = inArray ? VALUE : KEY;
					else if (b === (inArray ? 0x5d : 0x7d)) {
						depth--;
						if (depth === 0) lex = DONE;
						else {
							inArray = this.#isArray(depth);
							if (depth === 1 && this.#keyIndex >= 0) this.#commit(OTHER);
						}
					} else lex = INVALID;
					break;
				case OBJECT_OPEN:
				case KEY:
					if (b === QUOTE) {
						this.#stringIsKey = true;
						if (depth === 1) {
							mode = DECODE_KEY;
							this.#keyLength = 0;
							this.#highSurrogate = 0;
						}
						lex = STRING;
					} else if (b === 0x7d && lex === OBJECT_OPEN) {
						depth--;
						if (depth === 0) lex = DONE;
						else {
							inArray = this.#isArray(depth);
							lex = AFTER_VALUE;
							if (depth === 1 && this.#keyIndex >= 0) this.#commit(OTHER);
						}
					} else lex = INVALID;
					break;
				case COLON:
					if (b === 0x3a) lex = VALUE;
					else lex = INVALID;
					break;
				case VALUE:
				case ARRAY_OPEN: {
					const wanted = depth === 1 && this.#keyIndex >= 0;
					if (b === QUOTE) {
						this.#stringIsKey = false;
						if (wanted) {
							mode = CAPTURE;
							this.#captureLength = 0;
						}
						lex = STRING;
					} else if (b === 0x7b || b === 0x5b) {
						if (depth === MAX_DEPTH) {
							lex = INVALID;
							continue;
						}
						inArray = b === 0x5b;
						this.#setArray(depth, inArray);
						depth++;
						lex = inArray ? ARRAY_OPEN : OBJECT_OPEN;
					} else if (b === 0x5d && lex === ARRAY_OPEN) {
						depth--;
						inArray = this.#isArray(depth);
						lex = AFTER_VALUE;
						if (depth === 1 && this.#keyIndex >= 0) this.#commit(OTHER);
					} else if (b === 0x2d || (b >= 0x30 && b <= 0x39)) {
						this.#numberCaptured = wanted;
						if (wanted) this.#startNumber(b === 0x2d);
						if (b === 0x2d) lex = NUMBER_MINUS;
						else if (b === 0x30) lex = NUMBER_ZERO;
						else {
							if (wanted) this.#digit(b - 0x30, false);
							lex = NUMBER_INT;
						}
					} else {
						const literal = b === 0x74 ? 0 : b === 0x66 ? 1 : b === 0x6e ? 2 : undefined;
						if (literal === undefined) {
							lex = INVALID;
							continue;
						}
						this.#literal = LITERALS[literal];
						this.#literalKind = LITERAL_KINDS[literal];
						this.#literalAt = 1;
						lex = LITERAL;
					}
					break;
				}
				case NUMBER_MINUS:
				case NUMBER_DOT:
				case NUMBER_E_SIGN:
					if (b < 0x30 || b > 0x39) {
						lex = INVALID;
						continue;
					}
					if (this.#numberCaptured) this.#digit(b - 0x30, lex === NUMBER_DOT, lex === NUMBER_E_SIGN);
					lex = lex === NUMBER_MINUS ? (b === 0x30 ? NUMBER_ZERO : NUMBER_INT) : lex === NUMBER_DOT ? NUMBER_FRACTION : NUMBER_EXPONENT;
					break;
				case NUMBER_E:
					if (b === 0x2b || b === 0x2d) {
						this.#exponentNegative = b === 0x2d;
						lex = NUMBER_E_SIGN;
					} else if (b >= 0x30 && b <= 0x39) {
						if (this.#numberCaptured) this.#digit(b - 0x30, false, true);
						lex = NUMBER_EXPONENT;
					} else {
						lex = INVALID;
						continue;
					}
					break;
				case NUMBER_ZERO:
				case NUMBER_INT:
				case NUMBER_FRACTION:
				case NUMBER_EXPONENT:
					if (b >= 0x30 && b <= 0x39) {
						if (lex === NUMBER_ZERO) {
							// JSON has no leading zeros: `01` is invalid.
							lex = INVALID;
							continue;
						}
						if (this.#numberCaptured) this.#digit(b - 0x30, lex === NUMBER_FRACTION, lex === NUMBER_EXPONENT);
					} else if (b === 0x2e && (lex === NUMBER_ZERO || lex === NUMBER_INT)) lex = NUMBER_DOT;
					else if ((b === 0x65 || b === 0x45) && lex !== NUMBER_EXPONENT) {
						this.#exponentNegative = false;
						lex = NUMBER_E;
					} else {
						if (this.#numberCaptured) this.#commitNumber();
						lex = AFTER_VALUE;
						continue;
					}
					break;
				case LITERAL:
					if (b !== this.#literal[this.#literalAt]) {
						lex = INVALID;
						continue;
					}
					if (++this.#literalAt === this.#literal.length) {
						if (depth === 1 && this.#keyIndex >= 0) this.#commit(this.#literalKind);
						lex = AFTER_VALUE;
					}
					break;
				case START:
					if (b === 0x7b) {
						this.#setArray(0, false);
						depth = 1;
						inArray = false;
						lex = OBJECT_OPEN;
					} else lex = INVALID;
					break;
				case BOM:
					if (b === 0xef) lex = BOM_BB;
					else {
						lex = START;
						continue;
					}
					break;
				case BOM_BB:
					lex = b === 0xbb ? BOM_BF : INVALID;
					break;
				case BOM_BF:
					lex = b === 0xbf ? START : INVALID;
					break;
				case DONE:
					lex = INVALID;
					break;
				default:
					// INVALID: nothing after it matters.
					i = n;
					continue;
			}
			i++;
		}
		this.#lex = lex;
		this.#depth = depth;
		this.#inArray = inArray;
		this.#mode = mode;
	}

	#isArray(depth: number): boolean {
		const level = depth - 1;
		return (((this.#arrays[level >>> 5] ?? 0) >>> (level & 31)) & 1) === 1;
	}

	#setArray(level: number, isArray: boolean): void {
		const index = level >>> 5;
		const bit = 1 << (level & 31);
		const word = this.#arrays[index] ?? 0;
		this.#arrays[index] = isArray ? word | bit : word & ~bit;
	}

	/** Appends a decoded byte of a top-level key; false when the key is longer than any wanted key. */
	#keyByte(byte: number): boolean {
		if (this.#keyLength === this.#key.length) return false;
		this.#key[this.#keyLength++] = byte;
		return true;
	}

	/**
	 * Appends a UTF-16 code unit from a `\u` escape of a key, as UTF-8; false when the key can no
	 * longer match (too long, or a lone surrogate, which no well-formed wanted key holds).
	 */
	#keyUnit(unit: number): boolean {
		const high = this.#highSurrogate;
		if (high !== 0) {
			this.#highSurrogate = 0;
			if (unit < 0xdc00 || unit > 0xdfff) return false;
			const point = 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00);
			return (
				this.#keyByte(0xf0 | (point >> 18)) &&
				this.#keyByte(0x80 | ((point >> 12) & 0x3f)) &&
				this.#keyByte(0x80 | ((point >> 6) & 0x3f)) &&
				this.#keyByte(0x80 | (point & 0x3f))
			);
		}
		if (unit >= 0xd800 && unit <= 0xdbff) {
			this.#highSurrogate = unit;
			return true;
		}
		if (unit >= 0xdc00 && unit <= 0xdfff) return false;
		if (unit < 0x80) return this.#keyByte(unit);
		if (unit < 0x800) return this.#keyByte(0xc0 | (unit >> 6)) && this.#keyByte(0x80 | (unit & 0x3f));
		return this.#keyByte(0xe0 | (unit >> 12)) && this.#keyByte(0x80 | ((unit >> 6) & 0x3f)) && this.#keyByte(0x80 | (unit & 0x3f));
	}

	#matchKey(): number {
		const length = this.#keyLength;
		for (let index = 0; index < this.#slots.length; index++) {
			const key = (this.#slots[index] as Slot).key;
			if (key.length !== length) continue;
			let at = 0;
			while (at < length && key[at] === this.#key[at]) at++;
			if (at === length) return index;
		}
		return -1;
	}

	/** Appends a byte of a string value's JSON text; false when the text is over the capture limit. */
	#captureByte(byte: number): boolean {
		if (this.#captureLength === STRING_CAPTURE_LIMIT) return false;
		this.#capture ??= new Uint8Array(STRING_CAPTURE_LIMIT);
		this.#capture[this.#captureLength++] = byte;
		return true;
	}

	/** A raw control character is captured as its escape, so the captured text stays valid JSON. */
	#captureControl(byte: number): boolean {
		return (
			this.#captureByte(BACKSLASH) &&
			this.#captureByte(0x75) &&
			this.#captureByte(0x30) &&
			this.#captureByte(0x30) &&
			this.#captureByte(HEX_DIGITS[byte >> 4] as number) &&
			this.#captureByte(HEX_DIGITS[byte & 15] as number)
		);
	}

	#startNumber(negative: boolean): void {
		this.#negative = negative;
		this.#digitCount = 0;
		this.#pendingZeros = 0;
		this.#droppedDigits = 0;
		this.#sticky = false;
		this.#fractionDigits = 0;
		this.#exponentNegative = false;
		this.#exponent = 0;
	}

	/**
	 * Takes a digit of a wanted number. The number is kept as significant digits and a decimal
	 * scale, so its length does not matter: zeros are held back until a non-zero digit follows,
	 * digits past {@link SIGNIFICANT_DIGITS} are dropped (remembering whether any was non-zero),
	 * and the exponent saturates far beyond where every double has underflowed or overflowed.
	 */
	#digit(digit: number, inFraction: boolean, inExponent = false): void {
		if (inExponent) {
			if (this.#exponent < 1e9) this.#exponent = this.#exponent * 10 + digit;
			return;
		}
		if (inFraction) this.#fractionDigits++;
		if (digit === 0) {
			if (this.#digitCount > 0) this.#pendingZeros++;
			return;
		}
		this.#digits ??= new Uint8Array(SIGNIFICANT_DIGITS);
		if (this.#pendingZeros > 0) {
			const zeros = Math.min(this.#pendingZeros, SIGNIFICANT_DIGITS - this.#digitCount);
			this.#digits.fill(0x30, this.#digitCount, this.#digitCount + zeros);
			this.#digitCount += zeros;
			this.#droppedDigits += this.#pendingZeros - zeros;
			this.#pendingZeros = 0;
		}
		if (this.#digitCount < SIGNIFICANT_DIGITS) this.#digits[this.#digitCount++] = 0x30 + digit;
		else {
			this.#droppedDigits++;
			this.#sticky = true;
		}
	}

	#commitNumber(): void {
		const slot = this.#commit(NUMBER);
		const length = this.#digitCount;
		slot.bytes ??= new Uint8Array(SIGNIFICANT_DIGITS + 1);
		const bytes = slot.bytes;
		if (this.#digits !== undefined) bytes.set(this.#digits.subarray(0, length));
		let scale = (this.#exponentNegative ? -this.#exponent : this.#exponent) - this.#fractionDigits + this.#droppedDigits + this.#pendingZeros;
		slot.length = length;
		if (this.#sticky) {
			bytes[slot.length++] = 0x31;
			scale--;
		}
		// Past these bounds every mantissa of at most 801 digits is already 0 or Infinity.
		slot.scale = Math.max(-100_000, Math.min(100_000, scale));
		slot.negative = this.#negative;
	}

	#commitString(captured: boolean): void {
		if (!captured) {
			this.#commit(OTHER);
			return;
		}
		const slot = this.#commit(TEXT);
		slot.bytes ??= new Uint8Array(SIGNIFICANT_DIGITS + 1);
		if (this.#capture !== undefined) slot.bytes.set(this.#capture.subarray(0, this.#captureLength));
		slot.length = this.#captureLength;
	}

	/** Records a value of the current wanted key; it becomes a {@link ScannedValue} only when `fields` is read. */
	#commit(kind: number): Slot {
		const slot = this.#slots[this.#keyIndex] as Slot;
		slot.kind = kind;
		slot.dirty = true;
		this.#dirty = true;
		return slot;
	}
}

function materialize(slot: Slot): ScannedValue {
	const bytes = slot.bytes?.subarray(0, slot.length);
	switch (slot.kind) {
		case NUMBER: {
			const sign = slot.negative ? "-" : "";
			if (bytes === undefined || bytes.length === 0) return { kind: "number", value: Number(`${sign}0`) };
			return { kind: "number", value: Number(`${sign}${DECODER.decode(bytes)}e${slot.scale}`) };
		}
		case TRUE:
			return { kind: "boolean", value: true };
		case FALSE:
			return { kind: "boolean", value: false };
		case NULL:
			return { kind: "null" };
		case TEXT:
			// The captured text passed the scanner's checks, so JSON.parse decodes its escapes exactly.
			return { kind: "string", value: JSON.parse(`"${bytes === undefined ? "" : DECODER.decode(bytes)}"`) as string };
		default:
			return { kind: "other" };
	}
}

/** Wanted keys in UTF-8: the same few names are asked for on every request. */
const ENCODED_KEYS = new Map<string, Uint8Array>();

function encodedKey(name: string): Uint8Array {
	let key = ENCODED_KEYS.get(name);
	if (key === undefined) {
		key = ENCODER.encode(name);
		// Bounded, in case a caller ever builds names from input.
		if (ENCODED_KEYS.size < 64) ENCODED_KEYS.set(name, key);
	}
	return key;
}

function isWhitespace(byte: number): boolean {
	return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

/** The length of the valid escape at `at` when it lies whole in the chunk; 0 otherwise, for the state machine to handle. */
function wholeEscapeLength(chunk: Uint8Array, at: number): number {
	if (at + 1 >= chunk.length) return 0;
	const letter = chunk[at + 1] as number;
	if (SIMPLE_ESCAPES[letter] !== 0) return 2;
	if (letter !== 0x75 || at + 5 >= chunk.length) return 0;
	const digits = (HEX[chunk[at + 2] as number] as number) | (HEX[chunk[at + 3] as number] as number) | (HEX[chunk[at + 4] as number] as number) | (HEX[chunk[at + 5] as number] as number);
	return digits < 0 ? 0 : 6;
}

function indexOrEnd(chunk: Uint8Array, byte: number, from: number): number {
	const at = chunk.indexOf(byte, from);
	return at < 0 ? chunk.length : at;
}
