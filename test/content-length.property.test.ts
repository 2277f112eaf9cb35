import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { declaredLength } from "../src/lib/content-length";

import { seedPerRun } from "./property-seed";

seedPerRun("test/content-length.property.test.ts");

// declaredLength against RFC 9110 §8.6, `Content-Length = 1*DIGIT`, read with the list rule of
// §5.6.1 (`#element`: elements separated by commas, with optional whitespace, OWS = SP / HTAB,
// around them), and the guard's two documented choices where the RFC leaves one, each also named
// in a test of its own below:
// - a list of the same decimal value is that value (§8.6 allows taking it, or refusing the message),
//   however many leading zeros each element has; values that differ are malformed, and so is an
//   empty element;
// - a value past Number.MAX_SAFE_INTEGER is malformed, since it cannot be counted exactly.
// The property claims exact agreement with this reading: no outcome is "allowed" besides it.

/** What the RFC's grammar and the guard's two choices say a field value reads as. */
function expected(field: string | null): number | null | undefined {
	if (field === null) return undefined;
	const elements = field.split(",").map((element) => element.replace(/^[ \t]+|[ \t]+$/g, ""));
	if (!elements.every((element) => /^[0-9]+$/.test(element))) return null;
	const values = new Set(elements.map((element) => BigInt(element)));
	if (values.size !== 1) return null;
	const [value] = values as Set<bigint> & Iterable<bigint>;
	return (value as bigint) > BigInt(Number.MAX_SAFE_INTEGER) ? null : Number(value);
}

/** What Headers strips from a value's ends: HTTP whitespace, not JavaScript's. */
function httpTrim(value: string): string {
	return value.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, "");
}

function check(field: string | null): void {
	const headers = new Headers();
	if (field !== null) headers.set("content-length", field);
	expect(declaredLength(headers), JSON.stringify(field)).toBe(expected(headers.get("content-length")));
}

const DIGITS = "0123456789";
const digits = (min: number, max: number) => fc.array(fc.constantFrom(...DIGITS), { minLength: min, maxLength: max }).map((list) => list.join(""));
/** 1*DIGIT, from 0 to well past 2^53, with leading zeros now and then. */
const number = fc.oneof(
	{ weight: 4, arbitrary: fc.tuple(fc.constantFrom("", "", "", "0", "00"), digits(1, 12)).map(([zeros, rest]) => zeros + rest) },
	fc.bigInt({ min: 0n, max: 2n ** 60n }).map(String),
	fc.tuple(fc.nat(30), digits(1, 5)).map(([zeros, rest]) => "0".repeat(zeros) + rest),
	fc.constantFrom("0", "9007199254740991", "9007199254740992", "09007199254740991", "99999999999999999", "18446744073709551616"),
);
/** What is not 1*DIGIT: signs, decimals, exponents, hex, other digits, inner whitespace, nothing at all. */
const notANumber = fc.oneof(
	fc.constantFrom("", "+5", "-5", "-0", "5.0", ".5", "5.", "1e3", "0x10", "0X1f", "Infinity", "NaN", "1_000", "5 5", "5\t5", "0b1", "null", "true", "\v5", "5\f", "\v"),
	fc.array(fc.constantFrom(..."0123456789+-.eExXabcdef_ "), { minLength: 1, maxLength: 6 }).map((chars) => chars.join("")),
);
/** OWS as the list rule allows it around an element. */
const ows = fc.constantFrom("", "", " ", "\t", "  ", " \t ");
const element = (value: fc.Arbitrary<string>) => fc.tuple(ows, value, ows).map((parts) => parts.join(""));

/** A header field value: one element, a list of the same element, the same value in other digits, or a mixed list. */
const field = fc.oneof(
	element(number),
	element(notANumber),
	fc.tuple(number, fc.array(fc.tuple(ows, ows), { minLength: 1, maxLength: 3 })).map(([value, spaces]) => spaces.map(([a, b]) => `${a}${value}${b}`).join(",")),
	fc.tuple(number, fc.array(fc.constantFrom("", "0", "00"), { minLength: 1, maxLength: 3 })).map(([value, zeros]) => zeros.map((padding) => padding + value).join(", ")),
	fc.array(element(fc.oneof(number, notANumber)), { minLength: 2, maxLength: 4 }).map((elements) => elements.join(",")),
);

describe("Content-Length against RFC 9110's grammar", () => {
	it("agrees with 1*DIGIT, the list rule and the guard's two documented choices on any field value, exactly", () => {
		fc.assert(
			fc.property(field, (value) => check(value)),
			{ numRuns: 3000 },
		);
	});

	it("reads a field sent twice as the list the runtime joins it into", () => {
		fc.assert(
			fc.property(fc.oneof(number, notANumber), fc.oneof(number, notANumber), (first, second) => {
				const headers = new Headers();
				headers.append("content-length", first);
				headers.append("content-length", second);
				expect(headers.get("content-length")).toBe(`${httpTrim(first)}, ${httpTrim(second)}`);
				check(headers.get("content-length"));
			}),
			{ numRuns: 1000 },
		);
	});

	it("takes a list of one decimal value written with different leading zeros as that value (the guard's choice where §8.6 allows refusing)", () => {
		const length = (value: string) => declaredLength(new Headers({ "content-length": value }));
		expect(length("42, 042")).toBe(42);
		expect(length("0, 00,000")).toBe(0);
		fc.assert(
			fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.array(fc.nat(30), { minLength: 2, maxLength: 4 }), (value, zeros) => {
				expect(length(zeros.map((count) => "0".repeat(count) + value).join(", "))).toBe(value);
			}),
			{ numRuns: 300 },
		);
	});

	it("reads a value of more than 16 characters whose leading zeros keep it small (once refused: a divergence now closed)", () => {
		const length = (value: string) => declaredLength(new Headers({ "content-length": value }));
		expect(length(`${"0".repeat(30)}42`)).toBe(42);
		expect(length(`${"0".repeat(17)}9007199254740991`)).toBe(Number.MAX_SAFE_INTEGER);
		expect(length(`${"0".repeat(17)}9007199254740992`)).toBeNull();
	});

	it("trims only SP and HTAB around an element, never VT or FF (OWS; once trimmed as JavaScript whitespace: a divergence now closed)", () => {
		const length = (value: string) => declaredLength(new Headers({ "content-length": value }));
		expect(length(" \t5\t ")).toBe(5);
		for (const value of ["\v5", "5\f", "\f5\v", "5,\v5"]) expect(length(value), JSON.stringify(value)).toBeNull();
	});

	it("answers undefined with no Content-Length, and reads the values at the edges exactly", () => {
		check(null);
		expect(declaredLength(new Headers())).toBeUndefined();
		const length = (value: string) => declaredLength(new Headers({ "content-length": value }));
		expect(length("0")).toBe(0);
		expect(length("000")).toBe(0);
		expect(length("42, 42")).toBe(42);
		expect(length("42,42,\t42 ")).toBe(42);
		expect(length("42, 43")).toBeNull();
		expect(length("42,")).toBeNull();
		expect(length("9007199254740991")).toBe(Number.MAX_SAFE_INTEGER);
		expect(length("9007199254740992")).toBeNull();
		expect(length("0000000000000042")).toBe(42);
		for (const malformed of ["", "-1", "+1", "1.0", "1e3", "0x10", "1 0", "1\v0", "4 2"]) expect(length(malformed), malformed).toBeNull();
	});
});
