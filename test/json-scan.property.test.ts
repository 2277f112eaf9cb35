import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type FieldScan, STRING_CAPTURE_LIMIT, type ScannedValue, scanTopLevelFields } from "../src/lib/json/top-level-fields";
import { expectedValue } from "./json-expect";
import { feedCut } from "./json-feed";
import { seedPerRun } from "./property-seed";

// Property tests: the scanner against JSON.parse, as `Request.json()` reads a body
// (`JSON.parse(new TextDecoder().decode(bytes))`), on generated JSON text. Its documented
// leniencies are the only exceptions, and the reference applies them too:
// - a leading byte-order mark is skipped (TextDecoder strips it, so the reference agrees as is);
// - raw control characters inside strings are accepted (the reference escapes them first);
// - a string of more than STRING_CAPTURE_LIMIT bytes of JSON text is `other`.


// A new seed each run (FC_SEED=... replays one): see test/property-seed.ts.
seedPerRun("test/json-scan.property.test.ts");

const WANTED = ["max_tokens", "stream", "model", "é", "😀", "", 'q"\\\n', "__proto__"];
const NEAR_MISSES = ["max_token", "max_tokens_", "Max_tokens", "streams", "max_tokens\u0000", "\ud83d", "\ude00", "a"];
const encoder = new TextEncoder();

/** The reference, with the scanner's documented leniencies: "invalid", or the wanted fields as the scan reports them. */
function reference(bytes: Uint8Array): "invalid" | Record<string, unknown> {
	let value: unknown;
	try {
		value = JSON.parse(freshObjects(escapeRawControls(new TextDecoder().decode(bytes))));
	} catch {
		return "invalid";
	}
	if (typeof value !== "object" || value === null || Array.isArray(value)) return "invalid";
	// fromEntries, not assignment: a "__proto__" key must become an own field, as in the scan's map.
	return Object.fromEntries(WANTED.filter((key) => Object.hasOwn(value, key)).map((key) => [key, expectedValue((value as Record<string, unknown>)[key])]));
}

let referenceObjects = 0;

/**
 * Opens every object of `text` with a member of a key never used before (`"#ref<n>":0`), so that
 * workerd's JSON.parse never follows a map transition an earlier document made: V8 there reads an
 * escaped one-character key as the key an earlier object had in the same place (see the test
 * "V8's JSON.parse in workerd ..." below), and the reference would then blame the scanner. The
 * member changes no document's validity (an empty object gets it without a comma) and is not a
 * wanted field.
 */
function freshObjects(text: string): string {
	return rewriteText(text, (char, inString, at) => {
		if (inString || char !== "{") return char;
		referenceObjects += 1;
		return `{"#ref${referenceObjects}":0${/^[ \t\r\n]*\}/.test(text.slice(at + 1)) ? "" : ","}`;
	});
}

/**
 * Escapes raw control characters inside strings, so JSON.parse accepts what the scanner accepts.
 * A text is valid for the scanner exactly when the escaped text is valid JSON: the escapes change
 * no quote's role, so strings stay where they were.
 */
function escapeRawControls(text: string): string {
	return rewriteText(text, (char, inString) => (inString && char < " " ? `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}` : char));
}

/**
 * Rewrites a JSON-like text one character at a time, each told whether it is inside a string (a
 * quote counts as inside once it opens one); an escape inside a string passes whole, unrewritten.
 */
function rewriteText(text: string, each: (char: string, inString: boolean, at: number) => string): string {
	let out = "";
	let inString = false;
	for (let at = 0; at < text.length; at++) {
		const char = text[at] as string;
		if (inString && char === "\\") {
			out += char + (text[at + 1] ?? "");
			at++;
			continue;
		}
		if (char === '"') inString = !inString;
		out += each(char, inString, at);
	}
	return out;
}


/**
 * Scans `bytes` cut at `cuts` (offsets, any order), each slice copied into one buffer that is
 * overwritten with garbage after its push, as the guard's pump reuses buffers.
 */
function scan(bytes: Uint8Array, cuts: readonly number[] = []): FieldScan {
	const scanner = scanTopLevelFields(WANTED);
	feedCut(bytes, cuts, (chunk) => scanner.push(chunk), 0x5b);
	scanner.end();
	return scanner;
}

function outcome(scanner: FieldScan): "invalid" | Record<string, ScannedValue> {
	expect(scanner.state).not.toBe("scanning");
	return scanner.state === "complete" ? Object.fromEntries(scanner.fields) : "invalid";
}

/** Compares with Object.is on numbers, so -0 is told from 0. */
function agree(bytes: Uint8Array, cuts: readonly number[]): void {
	const expected = reference(bytes);
	const found = outcome(scan(bytes, cuts));
	const label = new TextDecoder().decode(bytes.subarray(0, 300));
	expect(found, label).toEqual(expected);
	if (found !== "invalid" && expected !== "invalid") {
		for (const [key, value] of Object.entries(found)) {
			if (value.kind === "number") expect(Object.is(value.value, (expected[key] as { value: number }).value), `${key} in ${label}`).toBe(true);
		}
	}
}

// Generators of JSON text in the many ways JSON allows writing the same value.

const cuts = fc.array(fc.nat(), { maxLength: 24 });
const whitespace = fc.oneof({ weight: 3, arbitrary: fc.constant("") }, fc.array(fc.constantFrom(" ", "\t", "\n", "\r"), { minLength: 1, maxLength: 3 }).map((chars) => chars.join("")));

const SHORT_ESCAPES: Record<string, string> = { '"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function unicodeEscape(unit: number, upper: boolean): string {
	const hex = unit.toString(16).padStart(4, "0");
	return `\\u${upper ? hex.toUpperCase() : hex}`;
}

/** A string's JSON text, each code point written as `choice` picks: raw where JSON allows, a short escape, or `\u` in either case. */
function stringText(value: string, choices: readonly number[]): string {
	let out = '"';
	let at = 0;
	for (const char of value) {
		const choice = choices[at++ % Math.max(1, choices.length)] ?? 0;
		const code = char.codePointAt(0) as number;
		const units = char.length === 2 ? [char.charCodeAt(0), char.charCodeAt(1)] : [code];
		const lone = char.length === 1 && code >= 0xd800 && code <= 0xdfff;
		if (choice === 0 && !lone && code >= 0x20 && char !== '"' && char !== "\\") out += char;
		else if (choice === 1 && SHORT_ESCAPES[char] !== undefined) out += SHORT_ESCAPES[char];
		else if (choice <= 1 && !lone && code >= 0x20) out += SHORT_ESCAPES[char] ?? char;
		else out += units.map((unit) => unicodeEscape(unit, choice === 3)).join("");
	}
	return `${out}"`;
}

const unit = fc.oneof(
	{ weight: 6, arbitrary: fc.constantFrom("a", "Z", " ", "~", '"', "\\", "/", "é", "€", "😀", "\u2028", "\ufeff", "\uffff", "\u0000", "\n", "\u001f", "\ud800", "\udfff") },
	{ weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code)) },
	{ weight: 1, arbitrary: fc.integer({ min: 0x10000, max: 0x10ffff }).map((code) => String.fromCodePoint(code)) },
);
/** Short enough to be captured however it is written (6 bytes a unit at most), or too long to be captured at all. */
const stringValue = fc.oneof(
	{ weight: 9, arbitrary: fc.array(unit, { maxLength: 21 }).map((units) => units.join("")) },
	{ weight: 1, arbitrary: fc.array(unit, { minLength: STRING_CAPTURE_LIMIT + 1, maxLength: 400 }).map((units) => units.join("")) },
);
const written = (value: fc.Arbitrary<string>) => fc.tuple(value, fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 8 })).map(([text, choices]) => stringText(text, choices));
const key = written(fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...WANTED) }, fc.constantFrom(...NEAR_MISSES), stringValue));

const digits = (min: number, max: number) => fc.array(fc.integer({ min: 0, max: 9 }), { minLength: min, maxLength: max }).map((list) => list.join(""));
const someDigits = fc.oneof({ weight: 4, arbitrary: digits(1, 6) }, digits(15, 25), digits(300, 900));
const HALFWAY =
	"2.4703282292062327208828439643411068618252990130716238221279284125033775363510437593264991818081799618989828234772285886546332835517796989819938739800539093906315035659515570226392290858392449105184435931802849936536152500319370457678249219365623669863658480757001585769269903706311928279558551332927834338409351978015531246597263579574622766465272827220056374006485499977096599470454020828166226237857393450736339007967761930577506740176324673600968951340535537458516661134223766678604162159680461914467291840300530057530849048765391711386591646239524912623653881879636239373280423891018672348497668235089863388587925628302755995657524455507255189313690836254779186948667994968324049705821028513185451396213837722826145437693412532098591327667236328125e-324";
/** JSON's number grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, with long mantissas and extreme exponents. */
const numberText = fc.oneof(
	{
		weight: 6,
		arbitrary: fc
			.tuple(
				fc.boolean(),
				fc.oneof(fc.constant("0"), fc.tuple(fc.integer({ min: 1, max: 9 }), fc.oneof(fc.constant(""), someDigits)).map(([first, rest]) => `${first}${rest}`)),
				fc.option(fc.oneof(someDigits, fc.tuple(fc.nat(400), fc.integer({ min: 1, max: 9 })).map(([zeros, last]) => `${"0".repeat(zeros)}${last}`))),
				fc.option(fc.tuple(fc.constantFrom("e", "E"), fc.constantFrom("", "+", "-"), fc.oneof(digits(1, 3), fc.constantFrom("0308", "309", "324", "325", "400", "99999999999")))),
			)
			.map(([negative, integer, fraction, exponent]) => `${negative ? "-" : ""}${integer}${fraction === null ? "" : `.${fraction}`}${exponent === null ? "" : exponent.join("")}`),
	},
	// Long runs of zeros that an exponent of four or more digits cancels: the value is small again.
	fc
		.tuple(fc.boolean(), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 3000 }), fc.integer({ min: -3, max: 3 }))
		.map(([fraction, digit, zeros, shift]) => (fraction ? `0.${"0".repeat(zeros)}${digit}e${zeros + 1 + shift}` : `${digit}${"0".repeat(zeros)}e${-(zeros + shift)}`)),
	fc.constantFrom(
		"-0",
		"0e0",
		"-0.0",
		"-0e-5",
		"5e-324",
		"1e-400",
		"1.7976931348623157e308",
		"1.7976931348623158e308",
		"1e309",
		"9007199254740993",
		"64000",
		HALFWAY,
		// Past 800 significant digits: only a non-zero digit dropped at the end tells it from the exact midpoint.
		`${HALFWAY.slice(0, -5)}${"0".repeat(1000)}1e-324`,
	),
);

const { value, object } = fc.letrec<{ value: string; object: string; array: string }>((tie) => ({
	value: fc.oneof(
		{ depthSize: "small", withCrossShrink: true },
		numberText,
		written(stringValue),
		fc.constantFrom("true", "false", "null"),
		tie("array"),
		tie("object"),
	),
	array: fc.tuple(fc.array(fc.tuple(whitespace, tie("value"), whitespace), { maxLength: 4 }), whitespace).map(([items, empty]) => `[${items.map((item) => item.join("")).join(",") || empty}]`),
	object: fc
		.tuple(fc.array(fc.tuple(whitespace, key, whitespace, whitespace, tie("value"), whitespace), { maxLength: 6 }), whitespace)
		.map(([members, empty]) => `{${members.map(([a, k, b, c, v, d]) => `${a}${k}${b}:${c}${v}${d}`).join(",") || empty}}`),
}));
const document = fc.tuple(fc.constantFrom("", "", "", "\ufeff"), whitespace, object, whitespace).map((parts) => encoder.encode(parts.join("")));

/** An edit on the bytes: delete, insert or replace at a position, with bytes that matter to JSON or to UTF-8. */
const edit = fc.tuple(
	fc.constantFrom("delete", "insert", "replace"),
	fc.nat(),
	fc.oneof(fc.constantFrom(..."{}[],:\"\\0123456789-+.eEtrufalsnx /u\n\u0001".split("").map((char) => char.charCodeAt(0))), fc.integer({ min: 0x80, max: 0xff })),
);

function damaged(bytes: Uint8Array, edits: readonly (readonly ["delete" | "insert" | "replace", number, number])[]): Uint8Array {
	let out = [...bytes];
	for (const [kind, position, byte] of edits) {
		const at = position % (out.length + 1);
		if (kind === "delete") out = [...out.slice(0, at), ...out.slice(at + 1)];
		else if (kind === "insert") out = [...out.slice(0, at), byte, ...out.slice(at)];
		else out = [...out.slice(0, at), byte, ...out.slice(at + 1)];
	}
	return new Uint8Array(out);
}

describe("V8's JSON.parse in workerd, the reference's known anomaly (why the reference uses freshObjects)", () => {
	it("reads an escaped one-character key as the key an earlier object had in its place, where the scanner reads it right", () => {
		// Found by a random seed (the fixed seed hid it): after {"k":1,"\\":2}, workerd's JSON.parse
		// reads {"k":1,"\u00e9":2} with the key "\\" (Node 20's V8 reads "é"). This file's first test,
		// so the isolate is fresh: once many maps exist, V8 does not always take the faulty path.
		const first = `{"anomaly${referenceObjects}":1,"\\\\":2}`;
		const second = first.replace('"\\\\"', '"\\u00e9"');
		expect(Object.keys(JSON.parse(first))[1]).toBe("\\");
		expect(Object.keys(JSON.parse(second))[1], "workerd's JSON.parse: if this now reads é, V8 was fixed and freshObjects can go").toBe("\\");
		// The reference, with fresh objects, and the scanner both read é.
		const wanted = encoder.encode(second.replace(/"anomaly\d+"/, '"max_tokens"').replace('"\\u00e9":2', '"\\u00e9":3'));
		expect(Object.keys(JSON.parse(freshObjects(new TextDecoder().decode(wanted))))).toContain("é");
		expect(Object.fromEntries(scan(wanted).fields)).toEqual({ max_tokens: { kind: "number", value: 1 }, "é": { kind: "number", value: 3 } });
	});
});

describe("the scanner against JSON.parse", { timeout: 60_000 }, () => {
	it("reads every generated document as JSON.parse does, however it is cut", () => {
		fc.assert(
			fc.property(document, cuts, (bytes, at) => {
				expect(reference(bytes)).not.toBe("invalid");
				agree(bytes, at);
			}),
			{ numRuns: 400 },
		);
	});

	it("gives the same outcome cut anywhere, mid-escape and mid-UTF-8 included, as whole or byte by byte", () => {
		fc.assert(
			fc.property(document, fc.array(edit, { maxLength: 2 }), cuts, (bytes, edits, at) => {
				const body = damaged(bytes, edits);
				const whole = outcome(scan(body));
				expect(outcome(scan(body, at))).toEqual(whole);
				if (body.length <= 400) expect(outcome(scan(body, [...body.keys()]))).toEqual(whole);
			}),
			{ numRuns: 300 },
		);
	});

	it("marks a damaged document invalid exactly when JSON.parse throws, and otherwise reads it as JSON.parse does", () => {
		let invalid = 0;
		fc.assert(
			fc.property(document, fc.array(edit, { minLength: 1, maxLength: 3 }), cuts, (bytes, edits, at) => {
				const body = damaged(bytes, edits);
				if (reference(body) === "invalid") invalid++;
				agree(body, at);
			}),
			{ numRuns: 600 },
		);
		// Most edits break the document: the property saw many invalid ones.
		expect(invalid).toBeGreaterThan(200);
	});

	it("reads numbers of every shape to the double JSON.parse gives, -0 included", () => {
		fc.assert(
			fc.property(numberText, whitespace, cuts, (number, after, at) => {
				agree(encoder.encode(`{"max_tokens":${number}${after}}`), at);
			}),
			{ numRuns: 1000 },
		);
	});

	it("follows JSON's number grammar: a number-like token is invalid exactly when JSON.parse throws", () => {
		const token = fc.array(fc.constantFrom(..."-+.eE0123456789"), { minLength: 1, maxLength: 8 }).map((chars) => chars.join(""));
		let valid = 0;
		fc.assert(
			fc.property(token, cuts, (number, at) => {
				const bytes = encoder.encode(`{"max_tokens":${number}}`);
				if (reference(bytes) !== "invalid") valid++;
				agree(bytes, at);
			}),
			{ numRuns: 2000 },
		);
		expect(valid).toBeGreaterThan(100);
	});

	it("matches keys after decoding their escapes, surrogate pairs included, and lets the last duplicate win", () => {
		const wantedKey = written(fc.constantFrom(...WANTED, ...NEAR_MISSES));
		fc.assert(
			fc.property(fc.array(fc.tuple(wantedKey, numberText), { minLength: 1, maxLength: 8 }), cuts, (members, at) => {
				agree(encoder.encode(`{${members.map(([k, v]) => `${k}:${v}`).join(",")}}`), at);
			}),
			{ numRuns: 500 },
		);
	});
});

describe("nesting far past 10,000 levels", { timeout: 60_000 }, () => {
	/** Runs of arrays or objects, `{"k":[` style, adding up to `levels` deep. */
	const nesting = fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 60_000 })), { minLength: 1, maxLength: 8 });

	function nested(runs: readonly (readonly [boolean, number])[], inner: string): { open: string; close: string; text: string } {
		const open = runs.map(([array, count]) => (array ? "[" : '{"k":').repeat(count)).join("");
		const close = [...runs]
			.reverse()
			.map(([array, count]) => (array ? "]" : "}").repeat(count))
			.join("");
		return { open, close, text: `${open}${inner}${close}` };
	}

	it("reads any depth, with the fields before and after it, as JSON.parse does", () => {
		fc.assert(
			fc.property(nesting, value, numberText, fc.boolean(), cuts, (runs, inner, maxTokens, stream, at) => {
				const deep = nested(runs, inner).text;
				const bytes = encoder.encode(`{"stream":${stream},"a":${deep},"max_tokens":${maxTokens}}`);
				agree(bytes, at);
				expect(scan(bytes, at).state).toBe("complete");
			}),
			{ numRuns: 12 }, // each run is up to 480,000 levels deep (about a second); the seed changes every run
		);
	});

	it("is invalid, as JSON.parse says, when one closing bracket deep down is the wrong one", () => {
		fc.assert(
			fc.property(nesting, fc.nat(), cuts, (runs, position, at) => {
				const { open, close } = nested(runs, "1");
				const swapAt = position % close.length;
				const swapped = close.slice(0, swapAt) + (close[swapAt] === "]" ? "}" : "]") + close.slice(swapAt + 1);
				const bytes = encoder.encode(`{"max_tokens":1,"a":${open}1${swapped}}`);
				expect(reference(bytes)).toBe("invalid");
				const scanned = scan(bytes, at);
				expect(scanned.state).toBe("invalid");
				expect(scanned.problem).toEqual({ kind: "syntax", at: `{"max_tokens":1,"a":${open}1`.length + swapAt });
			}),
			{ numRuns: 12 }, // each run is up to 480,000 levels deep (about a second); the seed changes every run
		);
	});

	it("reads 300,000 levels at once", () => {
		const levels = 300_000;
		const bytes = encoder.encode(`{"a":${'{"b":['.repeat(levels / 2)}{}${"]}".repeat(levels / 2)},"max_tokens":64000}`);
		agree(bytes, [1, 70_000, 700_000]);
		expect(Object.fromEntries(scan(bytes).fields)).toEqual({ max_tokens: { kind: "number", value: 64_000 } });
	});
});
