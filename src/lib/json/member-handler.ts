import type { DecodedKey } from "./decoded-key";
import type { NumberReader } from "./number";
import type { StringCapture } from "./string-capture";

/** A member's value as the tokenizer reports it: `other` is an object, an array, or a string too long to capture. */
export type ValueKind = "number" | "string" | "true" | "false" | "null" | "other";

/** The tokenizer's user: it hears of the top-level object's members, and of nothing nested. */
export interface MemberHandler {
	/**
	 * A key of the top-level object ended; answers whether to read the member's value, which then
	 * reaches {@link value}. A key longer than the tokenizer's key capacity, or holding a lone
	 * surrogate, is not reported, and its value is skipped.
	 */
	key(key: DecodedKey): boolean;
	/** The value of a member whose key was accepted; `number` and `string` hold it until the next value is read. */
	value(kind: ValueKind, number: NumberReader, string: StringCapture): void;
}

/** Why and where a body stopped being a readable JSON object. */
export interface JsonProblem {
	/**
	 * `not-an-object`: the first byte past whitespace (and a byte-order mark) is not `{`. `syntax`:
	 * the object's JSON is malformed. `trailing`: more than whitespace follows the object.
	 * `truncated`: the body ended before its object closed.
	 */
	readonly kind: "not-an-object" | "syntax" | "trailing" | "truncated";
	/** The offset in the body of the first byte that is not valid where it stands; for `truncated`, the body's length. */
	readonly at: number;
}
