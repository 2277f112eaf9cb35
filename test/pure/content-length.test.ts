import { describe, expect, it } from "vitest";
import { declaredLength, hasBody } from "../../src/lib/content-length";

const length = (value: string) => declaredLength(new Headers({ "content-length": value }));

describe("Content-Length: leading zeros", () => {
	it("reads a value with any number of leading zeros as the same value, in a list too", () => {
		expect(length("0042, 42")).toBe(42);
		expect(length("42,0042,00042")).toBe(42);
		expect(length("0042, 43")).toBeNull();
	});

	it("counts the digits of the value, not its leading zeros, against the sixteen it reads", () => {
		expect(length("00000000000000000000042")).toBe(42);
		expect(length("0000009007199254740991")).toBe(Number.MAX_SAFE_INTEGER);
		expect(length("00000000000000000000000")).toBe(0);
		expect(length("10000000000000000")).toBeNull();
	});
});

describe("whether a request carries a body", () => {
	it("is yes for a body the runtime gives it, no without one or when it is declared empty", () => {
		const post = (headers: Record<string, string>) => new Request("https://guard.test/v1/messages", { method: "POST", body: "{}", headers });
		expect(hasBody(post({}))).toBe(true);
		expect(hasBody(post({ "content-length": "2" }))).toBe(true);
		expect(hasBody(post({ "content-length": "00" }))).toBe(false);
		expect(hasBody(new Request("https://guard.test/v1/models"))).toBe(false);
	});
});
