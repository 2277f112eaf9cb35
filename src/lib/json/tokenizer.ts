import { BitStack } from "./bit-stack";
import * as Bytes from "./bytes";
import { DecodedKey } from "./decoded-key";
import type { JsonProblem, MemberHandler, ValueKind } from "./member-handler";
import { NumberReader } from "./number";
import { StringCapture } from "./string-capture";

// Module-local copies for the byte loop: a module loader may turn each use of an imported binding
// into a property read (Vite's does, under vitest), which costs more than the byte test it feeds.
const { BACKSLASH, HEX, QUOTE, SIMPLE_ESCAPES, indexOrEnd, isWhitespace, wholeEscapeLength } = Bytes;

export type { JsonProblem, MemberHandler, ValueKind } from "./member-handler";

// The states. START to DONE, the states between tokens, must stay a range: whitespace is skipped
// for all of them at once.
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

/** Bytes of a string checked one by one before the search switches to `indexOf`, whose call costs more than a short string. */
const SHORT_SCAN = 64;

const LITERALS = [new TextEncoder().encode("true"), new TextEncoder().encode("false"), new TextEncoder().encode("null")] as const;
const LITERAL_KINDS = ["true", "false", "null"] as const;

/**
 * A streaming tokenizer for one JSON object, byte by byte, in chunks split anywhere: it checks
 * the whole text and tells its {@link MemberHandler} of the top-level members, and of the members
 * (or elements) of the containers the handler enters, one path deep at a time. Memory does
 * not grow with the body: strings, numbers and containers below the top level are checked and
 * forgotten, and nesting costs one bit a level in a {@link BitStack}, so any depth is read. Chunks
 * are not retained. A leading UTF-8 byte-order mark is skipped, raw control characters inside
 * strings are accepted, and bytes of 0x80 and above inside strings pass unchecked (they decode to
 * U+FFFD where invalid, as `Request.json()` reads them).
 */
export class JsonObjectTokenizer {
	readonly #handler: MemberHandler;
	#lex = BOM;
	#depth = 0;
	/** One bit a level, set where the container is an array. */
	readonly #arrays = new BitStack();
	#inArray = false;
	#mode = SKIP;
	#stringIsKey = false;
	/** The depth whose members the handler hears of: 1, the top level, until it enters a container. */
	#listen = 1;
	/** Whether the handler asked for the value of the current member of the listened container. */
	#wanted = false;
	readonly #key: DecodedKey;
	#unit = 0;
	#hexDigits = 0;
	readonly #string = new StringCapture();
	readonly #number = new NumberReader();
	#numberCaptured = false;
	#literal: Uint8Array = LITERALS[0];
	#literalKind: ValueKind = "true";
	#literalAt = 0;
	/** Bytes pushed before the current chunk. */
	#offset = 0;
	#opened = false;
	#problem: JsonProblem | undefined;

	/** `keyCapacity`: the longest key, in UTF-8 bytes, the handler may accept. */
	constructor(handler: MemberHandler, keyCapacity: number) {
		this.#handler = handler;
		this.#key = new DecodedKey(keyCapacity);
	}

	/** `complete` once the object closed (only whitespace may follow); `invalid` from the first byte that cannot belong. */
	get state(): "scanning" | "complete" | "invalid" {
		if (this.#lex === DONE) return "complete";
		return this.#lex === INVALID ? "invalid" : "scanning";
	}

	/** Why the body is invalid; undefined unless it is. */
	get problem(): JsonProblem | undefined {
		return this.#problem;
	}

	/** The bytes held for nesting (one bit a level reached, in doubling steps), for tests of memory. */
	get nestingBytes(): number {
		return this.#arrays.bytes;
	}

	/** The entered container at `listen` closed: tells the handler, and listens to the one around it. */
	#leave(listen: number): number {
		this.#handler.leave?.();
		return listen - 1;
	}

	/** The body ended: it is invalid unless its object closed. */
	end(): void {
		if (this.#lex === DONE || this.#lex === INVALID) return;
		this.#problem = { kind: "truncated", at: this.#offset };
		this.#lex = INVALID;
	}

	/** Reads the next bytes. Never throws on bad JSON: the state turns `invalid` and later bytes are ignored. */
	push(chunk: Uint8Array): void {
		let lex = this.#lex;
		if (lex === INVALID) return;
		let depth = this.#depth;
		let listen = this.#listen;
		let inArray = this.#inArray;
		let mode = this.#mode;
		const n = chunk.length;
		let i = 0;
		// Where the next quote and backslash of this chunk are, once searched for: each search starts
		// past the last one's find, so a chunk is searched through about once, however many strings.
		let quoteAt = -1;
		let backslashAt = -1;
		// Every move to INVALID `continue`s without consuming the byte, so the INVALID case below
		// sees the offending byte's offset.
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
							if (depth === listen) this.#wanted = mode === DECODE_KEY && this.#key.whole && this.#handler.key(this.#key);
							lex = COLON;
						} else {
							if (depth === listen && this.#wanted) this.#handler.value(mode === CAPTURE ? "string" : "other", this.#number, this.#string);
							lex = AFTER_VALUE;
						}
						mode = SKIP;
					} else if (b === BACKSLASH) {
						if (mode === CAPTURE && !this.#string.byte(b)) mode = SKIP;
						lex = ESCAPE;
					} else if (mode === DECODE_KEY) {
						if (!this.#key.byte(b)) mode = SKIP;
					} else if (mode === CAPTURE) {
						if (!(b < 0x20 ? this.#string.control(b) : this.#string.byte(b))) mode = SKIP;
					}
					break;
				case ESCAPE:
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
						if (mode === DECODE_KEY && !this.#key.byte(byte)) mode = SKIP;
						lex = STRING;
					}
					if (mode === CAPTURE && !this.#string.byte(b)) mode = SKIP;
					break;
				case UNICODE: {
					const digit = HEX[b] as number;
					if (digit < 0) {
						lex = INVALID;
						continue;
					}
					if (mode === CAPTURE && !this.#string.byte(b)) mode = SKIP;
					this.#unit = this.#unit * 16 + digit;
					if (++this.#hexDigits === 4) {
						if (mode === DECODE_KEY && !this.#key.unit(this.#unit)) mode = SKIP;
						lex = STRING;
					}
					break;
				}
				case AFTER_VALUE:
					if (b === 0x2c) lex = inArray ? VALUE : KEY;
					else if (b === (inArray ? 0x5d : 0x7d)) {
						if (depth === listen && listen > 1) listen = this.#leave(listen);
						depth--;
						if (depth === 0) lex = DONE;
						else inArray = this.#arrays.get(depth - 1);
					} else {
						lex = INVALID;
						continue;
					}
					break;
				case OBJECT_OPEN:
				case KEY:
					if (b === QUOTE) {
						this.#stringIsKey = true;
						if (depth === listen) {
							mode = DECODE_KEY;
							this.#key.reset();
						}
						lex = STRING;
					} else if (b === 0x7d && lex === OBJECT_OPEN) {
						if (depth === listen && listen > 1) listen = this.#leave(listen);
						depth--;
						if (depth === 0) lex = DONE;
						else {
							inArray = this.#arrays.get(depth - 1);
							lex = AFTER_VALUE;
						}
					} else {
						lex = INVALID;
						continue;
					}
					break;
				case COLON:
					if (b !== 0x3a) {
						lex = INVALID;
						continue;
					}
					lex = VALUE;
					break;
				case VALUE:
				case ARRAY_OPEN: {
					// Every element of an entered array is wanted.
					if (inArray && depth === listen) this.#wanted = true;
					const wanted = depth === listen && this.#wanted;
					if (b === QUOTE) {
						this.#stringIsKey = false;
						if (wanted) {
							mode = CAPTURE;
							this.#string.reset();
						}
						lex = STRING;
					} else if (b === 0x7b || b === 0x5b) {
						const entered = wanted && this.#handler.enter?.(b === 0x5b) === true;
						if (wanted && !entered) this.#handler.value("other", this.#number, this.#string);
						inArray = b === 0x5b;
						this.#arrays.set(depth, inArray);
						depth++;
						if (entered) listen = depth;
						lex = inArray ? ARRAY_OPEN : OBJECT_OPEN;
					} else if (b === 0x5d && lex === ARRAY_OPEN) {
						if (depth === listen && listen > 1) listen = this.#leave(listen);
						depth--;
						inArray = this.#arrays.get(depth - 1);
						lex = AFTER_VALUE;
					} else if (b === 0x2d || (b >= 0x30 && b <= 0x39)) {
						this.#numberCaptured = wanted;
						if (wanted) this.#number.start(b === 0x2d);
						if (b === 0x2d) lex = NUMBER_MINUS;
						else if (b === 0x30) lex = NUMBER_ZERO;
						else {
							if (wanted) this.#number.digit(b - 0x30, false);
							lex = NUMBER_INT;
						}
					} else {
						const literal = b === 0x74 ? 0 : b === 0x66 ? 1 : b === 0x6e ? 2 : -1;
						if (literal < 0) {
							lex = INVALID;
							continue;
						}
						this.#literal = LITERALS[literal as 0 | 1 | 2];
						this.#literalKind = LITERAL_KINDS[literal as 0 | 1 | 2];
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
					if (this.#numberCaptured) {
						if (lex === NUMBER_E_SIGN) this.#number.exponentDigit(b - 0x30);
						else this.#number.digit(b - 0x30, lex === NUMBER_DOT);
					}
					lex = lex === NUMBER_MINUS ? (b === 0x30 ? NUMBER_ZERO : NUMBER_INT) : lex === NUMBER_DOT ? NUMBER_FRACTION : NUMBER_EXPONENT;
					break;
				case NUMBER_E:
					if (b === 0x2b || b === 0x2d) {
						if (this.#numberCaptured) this.#number.exponentSign(b === 0x2d);
						lex = NUMBER_E_SIGN;
					} else if (b >= 0x30 && b <= 0x39) {
						if (this.#numberCaptured) this.#number.exponentDigit(b - 0x30);
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
						if (!this.#numberCaptured) break;
						if (lex === NUMBER_EXPONENT) this.#number.exponentDigit(b - 0x30);
						else this.#number.digit(b - 0x30, lex === NUMBER_FRACTION);
					} else if (b === 0x2e && (lex === NUMBER_ZERO || lex === NUMBER_INT)) lex = NUMBER_DOT;
					else if ((b === 0x65 || b === 0x45) && lex !== NUMBER_EXPONENT) lex = NUMBER_E;
					else {
						// The number ended at this byte, which the next state reads.
						if (this.#numberCaptured) this.#handler.value("number", this.#number, this.#string);
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
						if (depth === listen && this.#wanted) this.#handler.value(this.#literalKind, this.#number, this.#string);
						lex = AFTER_VALUE;
					}
					break;
				case START:
					if (b !== 0x7b) {
						lex = INVALID;
						continue;
					}
					this.#arrays.set(0, false);
					this.#opened = true;
					depth = 1;
					inArray = false;
					lex = OBJECT_OPEN;
					break;
				case BOM:
					if (b !== 0xef) {
						lex = START;
						continue;
					}
					lex = BOM_BB;
					break;
				case BOM_BB:
				case BOM_BF:
					if (b !== (lex === BOM_BB ? 0xbb : 0xbf)) {
						lex = INVALID;
						continue;
					}
					lex = lex === BOM_BB ? BOM_BF : START;
					break;
				case DONE:
					lex = INVALID;
					continue;
				default:
					// INVALID, on the byte that made it so; nothing after it matters.
					this.#problem = { kind: depth > 0 ? "syntax" : this.#opened ? "trailing" : "not-an-object", at: this.#offset + i };
					break scan;
			}
			i++;
		}
		this.#offset += n;
		this.#lex = lex;
		this.#depth = depth;
		this.#listen = listen;
		this.#inArray = inArray;
		this.#mode = mode;
	}
}
