import type { DecodedKey } from "./decoded-key";
import type { NumberReader } from "./number";
import type { StringCapture } from "./string-capture";

/** A member's value as the tokenizer reports it: `other` is an object, an array, or a string too long to capture. */
export type ValueKind = "number" | "string" | "true" | "false" | "null" | "other";

/**
 * The tokenizer's user: it hears of the top-level object's members, and of nothing nested unless
 * it enters a container (see {@link enter}).
 */
export interface MemberHandler {
	/**
	 * A key of the object being listened to (the top-level one, or the innermost entered one) ended;
	 * answers whether to read the member's value, which then reaches {@link enter} or {@link value}.
	 * A key longer than the tokenizer's key capacity, or holding a lone surrogate, is not reported,
	 * and its value is skipped.
	 */
	key(key: DecodedKey): boolean;
	/**
	 * A wanted value opens an object (or an array, when `array`); answers whether to enter it.
	 * Inside an entered object the handler hears of its members as of the top level's (`key`, then
	 * `enter` or `value`); inside an entered array every element is wanted. Until the entered
	 * container closes ({@link leave}), the containers around it are not listened to. A container
	 * not entered reaches {@link value} as `other`. Handlers without this method hear of the
	 * top-level members only.
	 */
	enter?(array: boolean): boolean;
	/** The innermost entered container closed: the one around it is listened to again. */
	leave?(): void;
	/**
	 * The value of a wanted member (or of an element of an entered array), unless it was entered;
	 * `number` and `string` hold it until the next value is read.
	 */
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
