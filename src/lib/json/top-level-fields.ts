import type { DecodedKey } from "./decoded-key";
import { DecimalNumber, type NumberReader } from "./number";
import { StringCapture } from "./string-capture";
import { type JsonProblem, JsonObjectTokenizer, type MemberHandler, type ValueKind } from "./tokenizer";

export { STRING_CAPTURE_LIMIT } from "./string-capture";
export type { JsonProblem } from "./tokenizer";

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
	 * object, a syntax error, trailing garbage, or a body that ended before its object closed. Once
	 * `invalid`, further bytes are ignored.
	 */
	readonly state: "scanning" | "complete" | "invalid";
	/** Why and where the body is invalid; undefined unless `state` is `invalid`. */
	readonly problem: JsonProblem | undefined;
}

/**
 * Scans a JSON body as it streams past, for the values of the `wanted` keys of its top-level
 * object, in memory that does not grow with the body but by one bit per level of nesting: nothing
 * nested is stored, keys are decoded only at the top level and only as long as the longest wanted
 * key, and values only for wanted keys. Any depth and any length are read. Chunks are not
 * retained, so a caller may reuse a buffer once `push` returns.
 *
 * It agrees with `JSON.parse(new TextDecoder().decode(body))`, as `Request.json()` reads a body:
 * keys are compared after their escapes are decoded, numbers of any length get the value JSON.parse
 * gives them, and invalid UTF-8 reads as U+FFFD. Where it differs:
 * - it is lenient where other parsers are, so as not to refuse a body its origin may accept: a
 *   leading UTF-8 byte-order mark is skipped (as `Request.json()` does) and raw control characters
 *   inside strings are accepted;
 * - a string longer than {@link STRING_CAPTURE_LIMIT} bytes of JSON text is `other`;
 * - wanted keys are taken to be well-formed text without U+FFFD: a body key holding a lone
 *   surrogate or invalid UTF-8 matches none.
 */
export function scanTopLevelFields(wanted: readonly string[]): FieldScan {
	return new TopLevelFieldScan(wanted);
}

// A class rather than an object literal: a literal with getters costs microseconds to build.
class TopLevelFieldScan implements FieldScan {
	readonly #members: WantedMembers;
	readonly #tokenizer: JsonObjectTokenizer;

	constructor(wanted: readonly string[]) {
		this.#members = new WantedMembers(wanted);
		this.#tokenizer = new JsonObjectTokenizer(this.#members, this.#members.longestKey);
	}

	push(chunk: Uint8Array): void {
		this.#tokenizer.push(chunk);
	}

	end(): void {
		this.#tokenizer.end();
	}

	get fields(): ReadonlyMap<string, ScannedValue> {
		return this.#members.fields();
	}

	get state(): FieldScan["state"] {
		return this.#tokenizer.state;
	}

	get problem(): JsonProblem | undefined {
		return this.#tokenizer.problem;
	}
}

/** The last value seen for a wanted key, kept as the tokenizer read it until `fields` is read. */
interface Slot {
	readonly name: string;
	/** The key in UTF-8, as body keys are compared. */
	readonly key: Uint8Array;
	kind: ValueKind;
	number: DecimalNumber | undefined;
	string: StringCapture | undefined;
	dirty: boolean;
}

/** The tokenizer's handler: matches top-level keys against the wanted ones and keeps their last values. */
class WantedMembers implements MemberHandler {
	readonly #slots: Slot[];
	readonly #map = new Map<string, ScannedValue>();
	#dirty = false;
	/** The wanted key whose value the tokenizer is reading. */
	#current: Slot | undefined;

	constructor(wanted: readonly string[]) {
		this.#slots = [...new Set(wanted)].map((name) => ({ name, key: encodedKey(name), kind: "other", number: undefined, string: undefined, dirty: false }));
	}

	/** The longest wanted key in UTF-8 bytes: longer body keys need not be decoded. */
	get longestKey(): number {
		return Math.max(0, ...this.#slots.map((slot) => slot.key.length));
	}

	key(key: DecodedKey): boolean {
		for (const slot of this.#slots) {
			if (key.equals(slot.key)) {
				this.#current = slot;
				return true;
			}
		}
		return false;
	}

	value(kind: ValueKind, number: NumberReader, string: StringCapture): void {
		const slot = this.#current as Slot;
		slot.kind = kind;
		slot.dirty = true;
		this.#dirty = true;
		// Copied as read, not converted: converting every duplicate of a key would cost more than reading it.
		if (kind === "number") {
			slot.number ??= new DecimalNumber();
			slot.number.copyFrom(number);
		} else if (kind === "string") {
			slot.string ??= new StringCapture();
			slot.string.copyFrom(string);
		}
	}

	fields(): ReadonlyMap<string, ScannedValue> {
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
}

function materialize(slot: Slot): ScannedValue {
	switch (slot.kind) {
		case "number":
			return { kind: "number", value: (slot.number as DecimalNumber).value() };
		case "string":
			return { kind: "string", value: (slot.string as StringCapture).value() };
		case "true":
			return { kind: "boolean", value: true };
		case "false":
			return { kind: "boolean", value: false };
		case "null":
			return { kind: "null" };
		default:
			return { kind: "other" };
	}
}

const ENCODER = new TextEncoder();
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
