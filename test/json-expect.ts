import { expect } from "vitest";
import { STRING_CAPTURE_LIMIT } from "../src/lib/json/top-level-fields";

/**
 * A value as the scanner reports it, from the value JSON.parse gave: a string is captured when its
 * JSON text fits the limit (each UTF-16 unit takes 1 to 6 bytes of JSON text); in between, either.
 */
export function expectedValue(value: unknown): unknown {
	if (typeof value === "number") return { kind: "number", value };
	if (typeof value === "boolean") return { kind: "boolean", value };
	if (value === null) return { kind: "null" };
	if (typeof value === "string") {
		if (value.length * 6 <= STRING_CAPTURE_LIMIT) return { kind: "string", value };
		if (value.length > STRING_CAPTURE_LIMIT) return { kind: "other" };
		return expect.anything();
	}
	return { kind: "other" };
}
