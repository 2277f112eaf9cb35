import { describe, expect, it } from "vitest";
import { type FieldScan, STRING_CAPTURE_LIMIT, type ScannedValue, scanTopLevelFields } from "../src/lib/json/top-level-fields";
import { JsonObjectTokenizer } from "../src/lib/json/tokenizer";
import { expectedValue } from "./json-expect";
import { seededRandom } from "./seeded-random";

const WANTED = ["max_tokens", "stream", "model", "é", "😀", "", 'q"\\\n'];
const encoder = new TextEncoder();

/** A seeded generator, so a failing document can be reproduced. */
const random = seededRandom;

type Rng = () => number;
const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)] as T;
const between = (rng: Rng, low: number, high: number) => low + Math.floor(rng() * (high - low + 1));

/**
 * Feeds `bytes` in chunks of the given sizes through one buffer that is overwritten with garbage
 * after every push, as the guard's pump recycles its buffers: a scanner that kept a chunk would
 * read the garbage.
 */
function feed(scan: FieldScan, bytes: Uint8Array, sizes: Iterable<number>): void {
	const buffer = new Uint8Array(Math.max(1, bytes.length));
	let at = 0;
	for (const size of sizes) {
		if (at >= bytes.length) break;
		const chunk = buffer.subarray(0, Math.min(size, bytes.length - at));
		chunk.set(bytes.subarray(at, at + chunk.length));
		scan.push(chunk);
		chunk.fill(0x7b);
		at += chunk.length;
	}
	if (at < bytes.length) feed(scan, bytes.subarray(at), [bytes.length - at]);
}

function* randomSizes(rng: Rng, largest: number): Generator<number> {
	for (;;) yield between(rng, 1, largest);
}

function scanned(bytes: Uint8Array, sizes: Iterable<number> = [bytes.length], wanted = WANTED): FieldScan {
	const scan = scanTopLevelFields(wanted);
	feed(scan, bytes, sizes);
	scan.end();
	return scan;
}

/** What the scan reports, in a form `toEqual` compares: "invalid", or the fields of a complete body. */
function outcome(scan: FieldScan): "invalid" | Record<string, ScannedValue> {
	expect(scan.state).not.toBe("scanning");
	return scan.state === "complete" ? Object.fromEntries(scan.fields) : "invalid";
}

/**
 * The reference: what `JSON.parse` makes of the body as `Request.json()` decodes it. A string
 * whose JSON text may lie on either side of the capture limit is matched by anything.
 */
function parsed(bytes: Uint8Array, wanted = WANTED): "invalid" | Record<string, unknown> {
	let value: unknown;
	try {
		value = JSON.parse(new TextDecoder().decode(bytes));
	} catch {
		return "invalid";
	}
	if (typeof value !== "object" || value === null || Array.isArray(value)) return "invalid";
	const fields: Record<string, unknown> = {};
	for (const key of wanted) if (Object.hasOwn(value, key)) fields[key] = expectedValue((value as Record<string, unknown>)[key]);
	return fields;
}


function agrees(text: string | Uint8Array, sizes?: Iterable<number>, wanted = WANTED): void {
	const bytes = typeof text === "string" ? encoder.encode(text) : text;
	expect(outcome(scanned(bytes, sizes, wanted)), typeof text === "string" ? text.slice(0, 500) : "bytes").toEqual(parsed(bytes, wanted));
}

// A serialiser that writes the same values in the many ways JSON allows: random whitespace,
// escapes in every form, numbers in every notation, and duplicate keys.

const KEYS = ["max_tokens", "stream", "model", "messages", "", "é", "😀", 'q"\\\n', "max_token", "max_tokens_", "Max_tokens", "streams", "a", "__proto__"];
const TEXT_UNITS = ["a", "Z", " ", '"', "\\", "/", "\n", "\t", "\u0000", "\u001f", "é", "€", "😀", "\u2028", "\ud800", "\udfff", "\ufeff", "\uffff"];
const SHORT_ESCAPES: Record<string, string> = { '"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function whitespace(rng: Rng): string {
	if (rng() < 0.7) return "";
	let out = "";
	for (let count = between(rng, 1, 3); count > 0; count--) out += pick(rng, [" ", "\n", "\r", "\t"]);
	return out;
}

function unicodeEscape(rng: Rng, unit: number): string {
	const hex = unit.toString(16).padStart(4, "0");
	return `\\u${rng() < 0.5 ? hex : hex.toUpperCase()}`;
}

function stringText(rng: Rng, value: string): string {
	let out = '"';
	for (let at = 0; at < value.length; at++) {
		const unit = value.charCodeAt(at);
		const char = value[at] as string;
		const surrogate = unit >= 0xd800 && unit <= 0xdfff;
		const next = value.charCodeAt(at + 1);
		const pair = unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff;
		if (surrogate && pair && rng() < 0.6) {
			out += value.slice(at, at + 2);
			at++;
		} else if (surrogate || rng() < 0.1) out += unicodeEscape(rng, unit);
		else if (SHORT_ESCAPES[char] !== undefined && (char !== "/" || rng() < 0.5)) out += SHORT_ESCAPES[char];
		else if (unit < 0x20) out += unicodeEscape(rng, unit);
		else out += char;
	}
	return `${out}"`;
}

function randomString(rng: Rng): string {
	// Short enough to be captured however it is written, or too long to be captured at all.
	const length = rng() < 0.9 ? between(rng, 0, Math.floor(STRING_CAPTURE_LIMIT / 6 / 2)) : between(rng, STRING_CAPTURE_LIMIT + 1, 600);
	let out = "";
	while (out.length < length) out += pick(rng, TEXT_UNITS);
	return out.slice(0, length);
}

function digits(rng: Rng, count: number): string {
	let out = "";
	for (let n = 0; n < count; n++) out += rng() < 0.3 ? "0" : String(between(rng, 0, 9));
	return out;
}

function numberText(rng: Rng): string {
	const fixed = ["0", "-0", "1", "-1", "0.1", "1e21", "1E+2", "5e-324", "2.2250738585072014e-308", "1.7976931348623157e308", "1e309", "-1e-400", "9007199254740993", "64000"];
	if (rng() < 0.3) return pick(rng, fixed);
	let out = rng() < 0.3 ? "-" : "";
	const long = rng() < 0.1;
	out += rng() < 0.2 ? "0" : String(between(rng, 1, 9)) + digits(rng, long ? between(rng, 20, 900) : between(rng, 0, 8));
	if (rng() < 0.4) out += `.${digits(rng, long ? between(rng, 1, 900) : between(rng, 1, 8))}`;
	if (rng() < 0.3) out += pick(rng, ["e", "E", "e+", "e-", "E-"]) + digits(rng, between(rng, 1, 3));
	return out;
}

function valueText(rng: Rng, depth: number): string {
	const roll = rng();
	if (depth > 4 || roll < 0.55) {
		const scalar = rng();
		if (scalar < 0.35) return numberText(rng);
		if (scalar < 0.7) return stringText(rng, randomString(rng));
		return pick(rng, ["true", "false", "null"]);
	}
	const count = between(rng, 0, 4);
	const parts: string[] = [];
	if (roll < 0.75) {
		for (let n = 0; n < count; n++) parts.push(whitespace(rng) + valueText(rng, depth + 1) + whitespace(rng));
		return `[${parts.join(",")}${parts.length === 0 ? whitespace(rng) : ""}]`;
	}
	return objectText(rng, depth + 1);
}

function objectText(rng: Rng, depth: number): string {
	const parts: string[] = [];
	for (let n = between(rng, 0, 6); n > 0; n--) {
		const key = stringText(rng, rng() < 0.8 ? pick(rng, KEYS) : randomString(rng));
		parts.push(`${whitespace(rng)}${key}${whitespace(rng)}:${whitespace(rng)}${valueText(rng, depth)}${whitespace(rng)}`);
	}
	return `{${parts.join(",")}${parts.length === 0 ? whitespace(rng) : ""}}`;
}

function randomDocument(rng: Rng): string {
	return whitespace(rng) + objectText(rng, 0) + whitespace(rng);
}

/** One random edit: most make the document invalid, some leave it valid with other values. */
function mutate(rng: Rng, text: string): string {
	const at = between(rng, 0, text.length);
	const roll = rng();
	if (roll < 0.3) return text.slice(0, at) + text.slice(at + 1);
	if (roll < 0.8) return text.slice(0, at) + pick(rng, ["{", "}", "[", "]", ",", ":", '"', "\\", "0", "1", "-", "+", ".", "e", "t", "n", "u", " ", "x"]) + text.slice(at);
	return text.slice(0, at);
}

// Generous timeouts: these run thousands of documents, and a loaded machine must not fail them.
describe("agreement with JSON.parse", { timeout: 60_000 }, () => {
	it("on hand-written documents", () => {
		const documents = [
			"{}",
			' \r\n\t{ } \n',
			'{"max_tokens":1024,"stream":true}',
			'{"model":"claude","max_tokens":64000,"stream":false,"messages":[]}',
			'{"stream":null,"max_tokens":-0}',
			'{"max_tokens":1.5e3,"stream":"yes"}',
			'{"max_tokens":1E-2,"model":"x\\ny\\"z\\\\\\/\\b\\f\\r\\t"}',
			'{"model":"\\u00e9\\u20AC\\ud83d\\ude00 raw é€😀","é":1,"😀":2}',
			'{"\\u00e9":3,"\\ud83d\\ude00":4}',
			'{"model":"\\ud800 lone","max_tokens":[1,2,{"max_tokens":3}]}',
			'{"max_tokens":{"max_tokens":1,"stream":true},"stream":[true]}',
			'{"messages":[{"role":"user","content":"x","max_tokens":99999,"stream":false}],"max_tokens":16}',
			'{"messages":{"max_tokens":5},"stream":{"stream":true}}',
			'{"max_tokens":1,"max_tokens":2,"max_tokens":3}',
			'{"stream":true,"x":{},"stream":false}',
			'{"max_tokens":"64000"}',
			'{"max_tokens":[],"stream":{}}',
			'{"":"empty key","q\\"\\\\\\n":"escaped key"}',
			'{"max_tokens":0,"a":[[[[[[]]]]]],"b":{"c":{"d":[{"e":null}]}}}',
			'{"max_tokens":123456789012345678901234567890,"stream":false}',
			'{"max_tokens":1e400,"model":-1e-400}',
			'{"max_tokens":0.1000000000000000055511151231257827021181583404541015625}',
			`{"max_tokens":${"9".repeat(2000)}}`,
			`{"max_tokens":0.${"0".repeat(5000)}1e5001}`,
			`{"model":"${"m".repeat(STRING_CAPTURE_LIMIT)}"}`,
			`{"model":"${"m".repeat(STRING_CAPTURE_LIMIT + 1)}"}`,
			`{"model":"${"\\n".repeat(STRING_CAPTURE_LIMIT / 2)}"}`,
			`{"${"k".repeat(10_000)}":1,"max_tokens":2}`,
			'{"max_tokens\\u0000":1,"max_tokens ":2,"max_tokenss":3,"max_token":4}',
		];
		for (const text of documents) {
			agrees(text);
			agrees(text, randomSizes(random(text.length), 7));
		}
	});

	it("on randomly generated documents split at random chunk boundaries", () => {
		const rng = random(2024);
		for (let n = 0; n < 1500; n++) {
			const text = randomDocument(rng);
			agrees(text, randomSizes(rng, pick(rng, [1, 3, 16, 200, 1 << 20])));
		}
	});

	it("on randomly damaged documents, which it marks invalid whenever JSON.parse throws", () => {
		const rng = random(7);
		let invalid = 0;
		for (let n = 0; n < 1500; n++) {
			let text = randomDocument(rng);
			for (let edits = between(rng, 1, 2); edits > 0; edits--) text = mutate(rng, text);
			const bytes = encoder.encode(text);
			if (parsed(bytes) === "invalid") invalid++;
			agrees(bytes, randomSizes(rng, pick(rng, [1, 5, 64, 1 << 20])));
		}
		expect(invalid).toBeGreaterThan(500);
	});

	it("on numbers in every notation and length", () => {
		const rng = random(99);
		for (let n = 0; n < 3000; n++) agrees(`{"max_tokens":${numberText(rng)}}`, randomSizes(rng, 4));
		const halfway =
			"2.4703282292062327208828439643411068618252990130716238221279284125033775363510437593264991818081799618989828234772285886546332835517796989819938739800539093906315035659515570226392290858392449105184435931802849936536152500319370457678249219365623669863658480757001585769269903706311928279558551332927834338409351978015531246597263579574622766465272827220056374006485499977096599470454020828166226237857393450736339007967761930577506740176324673600968951340535537458516661134223766678604162159680461914467291840300530057530849048765391711386591646239524912623653881879636239373280423891018672348497668235089863388587925628302755995657524455507255189313690836254779186948667994968324049705821028513185451396213837722826145437693412532098591327667236328125";
		// The exact midpoint between 0 and the smallest double rounds to even (0); a digit past it rounds up.
		agrees(`{"max_tokens":${halfway}e-324}`);
		agrees(`{"max_tokens":${halfway}${"0".repeat(3000)}1e-324}`);
		const scan = scanned(encoder.encode(`{"max_tokens":${halfway}${"0".repeat(3000)}1e-324}`));
		expect(scan.fields.get("max_tokens")).toEqual({ kind: "number", value: 5e-324 });
	});

	it("at every split position of a small document, and byte by byte", () => {
		const text = '{"é😀":"\\ud83d\\ude00é","max\\u005ftokens" : 4096,\n"stream":true,"model":"c€\\"","n":[1,{"max_tokens":2}],"😀":null}';
		const bytes = encoder.encode(text);
		const expected = parsed(bytes);
		expect(expected).toEqual({
			max_tokens: { kind: "number", value: 4096 },
			stream: { kind: "boolean", value: true },
			model: { kind: "string", value: 'c€"' },
			"😀": { kind: "null" },
		});
		for (let first = 0; first <= bytes.length; first++) {
			for (let second = first; second <= bytes.length; second++) {
				expect(outcome(scanned(bytes, [first, second - first, bytes.length])), `split at ${first} and ${second}`).toEqual(expected);
			}
		}
		expect(outcome(scanned(bytes, randomSizes(() => 0, 1)))).toEqual(expected);
	});
});

describe("what counts as a wanted field", () => {
	it("counts only the top level: max_tokens nested in messages is not the request's", () => {
		const scan = scanned(encoder.encode('{"messages":[{"max_tokens":1,"stream":true,"content":[{"max_tokens":2}]}],"metadata":{"max_tokens":3}}'));
		expect(scan.state).toBe("complete");
		expect(scan.fields.size).toBe(0);
	});

	it("compares keys after decoding escapes, as JSON.parse does, so an escaped key cannot slip past", () => {
		for (const key of ["max\\u005ftokens", "\\u006d\\u0061\\u0078\\u005F\\u0074\\u006f\\u006b\\u0065\\u006e\\u0073", "max_tok\\u0065ns"]) {
			const scan = scanned(encoder.encode(`{"${key}":128000}`));
			expect(scan.fields.get("max_tokens"), key).toEqual({ kind: "number", value: 128_000 });
		}
		expect(scanned(encoder.encode('{"\\ud83d\\ude00":1}')).fields.get("😀")).toEqual({ kind: "number", value: 1 });
		// A lone surrogate is not the character it starts, nor the replacement character.
		expect(scanned(encoder.encode('{"\\ud83d":1,"\\ud83d\\u0041":2}')).fields.size).toBe(0);
	});

	it("lets the last of duplicate keys win, whatever came between", () => {
		const scan = scanned(encoder.encode('{"max_tokens":1,"stream":true,"max_tokens":{"a":1},"stream":false,"max_tokens":7}'));
		expect(Object.fromEntries(scan.fields)).toEqual({ max_tokens: { kind: "number", value: 7 }, stream: { kind: "boolean", value: false } });
		expect(scanned(encoder.encode('{"max_tokens":7,"max_tokens":[7]}')).fields.get("max_tokens")).toEqual({ kind: "other" });
	});

	it("reports objects, arrays and over-long strings as other, and captures strings up to the limit", () => {
		const atLimit = "s".repeat(STRING_CAPTURE_LIMIT);
		const scan = scanned(encoder.encode(`{"max_tokens":[1],"stream":{"x":1},"model":"${atLimit}","é":"${atLimit}s"}`));
		expect(Object.fromEntries(scan.fields)).toEqual({
			max_tokens: { kind: "other" },
			stream: { kind: "other" },
			model: { kind: "string", value: atLimit },
			é: { kind: "other" },
		});
	});

	it("reports fields as they are found, before the body ends", () => {
		const scan = scanTopLevelFields(["max_tokens", "stream"]);
		scan.push(encoder.encode('{"stream":true,"max_tokens":12'));
		expect(scan.state).toBe("scanning");
		expect(Object.fromEntries(scan.fields)).toEqual({ stream: { kind: "boolean", value: true } });
		scan.push(encoder.encode("34 , "));
		expect(scan.fields.get("max_tokens")).toEqual({ kind: "number", value: 1234 });
	});
});

describe("the state of the scan", () => {
	it("is complete when the top-level object closes, and stays so through trailing whitespace", () => {
		const scan = scanTopLevelFields(["max_tokens"]);
		scan.push(encoder.encode('{"max_tokens":5'));
		expect(scan.state).toBe("scanning");
		scan.push(encoder.encode("}"));
		expect(scan.state).toBe("complete");
		scan.push(encoder.encode(" \n\t\r "));
		scan.end();
		expect(scan.state).toBe("complete");
	});

	it("marks invalid documents invalid, and never throws", () => {
		const documents = [
			"",
			"   ",
			"[]",
			'["max_tokens",1]',
			"1",
			'"max_tokens"',
			"null",
			"{",
			'{"max_tokens":1',
			'{"max_tokens":1,',
			'{"max_tokens"}',
			'{"max_tokens":}',
			'{"max_tokens" 1}',
			'{"max_tokens":1 "stream":true}',
			'{"max_tokens":1,}',
			"{,}",
			'{"a":[1,]}',
			'{"a":[,1]}',
			'{"a":[1 2]}',
			'{"a":[}',
			'{"a":]}',
			'{"a":{]}',
			'{"a":[}]}',
			'{"a":1}}',
			'{"a":1}]',
			"{} x",
			"{}{}",
			"{} {",
			'{"a":tru}',
			'{"a":truee}',
			'{"a":nul}',
			'{"a":False}',
			'{"a":01}',
			'{"a":-01}',
			'{"a":1.}',
			'{"a":.5}',
			'{"a":-}',
			'{"a":1e}',
			'{"a":1e+}',
			'{"a":+1}',
			'{"a":0x10}',
			'{"a":NaN}',
			'{"a":Infinity}',
			'{"a":1.5.2}',
			'{"a":"\\x"}',
			'{"a":"\\u12g4"}',
			'{"a":"\\u12"}',
			'{"a":"\\U0041"}',
			'{"a":"unterminated}',
			"{'a':1}",
			"{a:1}",
			'{"a"::1}',
			'{"a":1,,"b":2}',
			'{"a\\":1}',
			"\u00a0{}",
		];
		for (const text of documents) {
			const bytes = encoder.encode(text);
			expect(parsed(bytes), text).toBe("invalid");
			expect(() => scanned(bytes)).not.toThrow();
			expect(scanned(bytes).state, text).toBe("invalid");
			expect(scanned(bytes, randomSizes(random(1), 3)).state, text).toBe("invalid");
		}
	});

	it("is invalid when a body stops in the middle, even after a valid prefix", () => {
		const text = '{"max_tokens":100,"stream":true}';
		for (let end = 0; end < text.length; end++) expect(scanned(encoder.encode(text.slice(0, end))).state).toBe("invalid");
	});

	it("ignores everything after it turns invalid", () => {
		const scan = scanTopLevelFields(["max_tokens"]);
		scan.push(encoder.encode('{"a":x,"max_tokens":1}'));
		scan.push(encoder.encode('{"max_tokens":2}'));
		scan.end();
		expect(scan.state).toBe("invalid");
		expect(scan.fields.size).toBe(0);
	});

	it("says why and where a body is invalid", () => {
		const cases: [string, { kind: string; at: number }][] = [
			["[1]", { kind: "not-an-object", at: 0 }],
			[' \n "x"', { kind: "not-an-object", at: 3 }],
			['{"a":1,}', { kind: "syntax", at: 7 }],
			['{"a":[1 2]}', { kind: "syntax", at: 8 }],
			['{"a":01}', { kind: "syntax", at: 6 }],
			['{"a":"\\x"}', { kind: "syntax", at: 7 }],
			['{"a":1} x', { kind: "trailing", at: 8 }],
			["{}}", { kind: "trailing", at: 2 }],
			['{"a":[1', { kind: "truncated", at: 7 }],
			["", { kind: "truncated", at: 0 }],
		];
		for (const [text, problem] of cases) {
			const bytes = encoder.encode(text);
			expect(scanned(bytes).problem, text).toEqual(problem);
			expect(scanned(bytes, randomSizes(random(5), 2)).problem, `${text} in small chunks`).toEqual(problem);
		}
		expect(scanned(encoder.encode('{"a":1}')).problem).toBeUndefined();
	});
});

describe("nesting of any depth", { timeout: 60_000 }, () => {
	const nested = (levels: number, open = "[", close = "]") => `{"a":${open.repeat(levels)}${close.repeat(levels)},"max_tokens":64000}`;

	it("reads max_tokens after a field nested 10,001 levels deep, which once blinded it", () => {
		for (const levels of [10_000, 10_001, 10_002]) {
			expect(outcome(scanned(encoder.encode(nested(levels)), randomSizes(random(levels), 4096)))).toEqual({ max_tokens: { kind: "number", value: 64_000 } });
		}
	});

	it("reads 300,000 levels of arrays and objects, mixed, and finds the fields around them", () => {
		const levels = 150_000;
		const text = `{"stream":true,"a":${'{"b":['.repeat(levels)}1${"]}".repeat(levels)},"max_tokens":3}`;
		expect(outcome(scanned(encoder.encode(text), randomSizes(random(3), 100_000)))).toEqual({
			stream: { kind: "boolean", value: true },
			max_tokens: { kind: "number", value: 3 },
		});
	});

	it("still tells an array's close from an object's at any depth", () => {
		const levels = 100_000;
		const opening = '{"b":['.repeat(levels);
		const balanced = "]}".repeat(levels);
		// One bracket swapped, deep down or near the top: JSON.parse throws, and so must the scan.
		for (const swapAt of [0, 1, 2 * levels - 2, 2 * levels - 1, levels, levels + 1]) {
			const closing = balanced.slice(0, swapAt) + (balanced[swapAt] === "]" ? "}" : "]") + balanced.slice(swapAt + 1);
			const scan = scanned(encoder.encode(`{"a":${opening}${closing}}`), [65_536, 65_536, 1 << 30]);
			expect(scan.state, `swapped at ${swapAt}`).toBe("invalid");
			expect(scan.problem).toEqual({ kind: "syntax", at: 5 + opening.length + swapAt });
		}
		expect(outcome(scanned(encoder.encode(`{"a":${opening}${balanced}}`)))).toEqual({});
		// Around the levels where the bits move from a number into words, every closer is checked.
		for (let depth = 28; depth <= 70; depth++) {
			const kinds = Array.from({ length: depth }, (_, level) => (level * 7) % 3 === 0);
			const open = kinds.map((array) => (array ? "[" : '{"k":')).join("");
			const close = kinds.map((array) => (array ? "]" : "}")).reverse();
			expect(outcome(scanned(encoder.encode(`{"a":${open}1${close.join("")}}`)))).toEqual({});
			for (let at = 0; at < close.length; at++) {
				const swapped = close.map((closer, index) => (index !== at ? closer : closer === "]" ? "}" : "]")).join("");
				expect(scanned(encoder.encode(`{"a":${open}1${swapped}}`)).state, `depth ${depth}, closer ${at}`).toBe("invalid");
			}
		}
	});

	it("holds one bit per level reached for nesting, and nothing more as a shallow body grows", () => {
		const members = { key: () => false, value: () => undefined };
		const deep = new JsonObjectTokenizer(members, 16);
		const levels = 300_000;
		deep.push(encoder.encode(`{"a":${"[".repeat(levels)}`));
		deep.push(encoder.encode(`${"]".repeat(levels)}}`));
		deep.end();
		expect(deep.state).toBe("complete");
		// One bit a level, grown by doubling: at most twice the bits needed.
		expect(deep.nestingBytes).toBeGreaterThanOrEqual(levels / 8);
		expect(deep.nestingBytes).toBeLessThanOrEqual((2 * levels) / 8);

		// 16 MiB of a shallow body through one reused 64 KiB buffer: what the tokenizer holds does
		// not move from what it held after the first slice.
		const flat = new JsonObjectTokenizer(members, 16);
		const buffer = new Uint8Array(64 * 1024);
		const element = encoder.encode('{"role":"user","content":[{"type":"text","text":"lorem \\"ipsum\\" \\u00e9"}]},');
		flat.push(encoder.encode('{"messages":['));
		const afterFirst = flat.nestingBytes;
		let pushed = 0;
		while (pushed < 16 * 1024 * 1024) {
			let filled = 0;
			while (filled + element.length <= buffer.length) {
				buffer.set(element, filled);
				filled += element.length;
			}
			flat.push(buffer.subarray(0, filled));
			pushed += filled;
		}
		flat.push(encoder.encode('{}],"max_tokens":1}'));
		flat.end();
		expect(flat.state).toBe("complete");
		expect(flat.nestingBytes).toBe(afterFirst);
		// Its nesting (4 levels) fits the bits kept without an allocation.
		expect(afterFirst).toBe(0);
	});
});

describe("where it is more lenient than JSON.parse, as origins may be", () => {
	it("skips a leading UTF-8 byte-order mark, as Request.json() does", () => {
		const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...encoder.encode('{"max_tokens":9}')]);
		expect(outcome(scanned(bytes, [1, 1, 1, 100]))).toEqual({ max_tokens: { kind: "number", value: 9 } });
		expect(outcome(scanned(bytes))).toEqual(parsed(bytes));
		expect(scanned(new Uint8Array([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf, 0x7b, 0x7d])).state).toBe("invalid");
	});

	it("accepts raw control characters in strings, and still reads the fields around them", () => {
		const scan = scanned(encoder.encode('{"messages":["line\none\ttab"],"model":"a\nb","max_tokens":3}'));
		expect(Object.fromEntries(scan.fields)).toEqual({ model: { kind: "string", value: "a\nb" }, max_tokens: { kind: "number", value: 3 } });
	});

	it("passes invalid UTF-8 through as Request.json() would decode it", () => {
		const bytes = new Uint8Array([...encoder.encode('{"model":"a'), 0xff, 0xc3, ...encoder.encode('","\u00e9'), 0xa9, ...encoder.encode('":1,"max_tokens":2}')]);
		expect(outcome(scanned(bytes, [11, 1, 1, 1, 100]))).toEqual(parsed(bytes));
	});
});

describe("a 30 MB body", { timeout: 60_000 }, () => {
	const MESSAGE = `{"role":"user","content":[{"type":"text","text":${JSON.stringify(
		`Summarise this: "quoted", tabs\t, new\nlines, unicode é€😀 and a backslash \\. ${"lorem ipsum dolor sit amet ".repeat(300)}`,
	)}},{"type":"tool_result","content":"{\\"max_tokens\\":1}","max_tokens":1,"stream":true}],"max_tokens":2}`;

	/**
	 * Writes the body into one reused 4 MiB buffer, in chunks of varying size, handing each chunk to
	 * `push` before overwriting it; the body is never held whole. Answers the body's length.
	 */
	function streamBody(push: (chunk: Uint8Array) => void, target: number, tail: string): number {
		const buffer = new Uint8Array(4 * 1024 * 1024);
		const rng = random(30);
		const message = encoder.encode(MESSAGE);
		const comma = encoder.encode(",");
		let filled = 0;
		let total = 0;
		let room = between(rng, 1, buffer.length);
		const write = (bytes: Uint8Array) => {
			let at = 0;
			while (at < bytes.length) {
				const take = Math.min(bytes.length - at, room - filled);
				buffer.set(bytes.subarray(at, at + take), filled);
				filled += take;
				at += take;
				if (filled === room) flush();
			}
		};
		const flush = () => {
			push(buffer.subarray(0, filled));
			total += filled;
			buffer.fill(0x22, 0, filled);
			filled = 0;
			room = between(rng, 1, buffer.length);
		};
		write(encoder.encode('{"model":"claude","max_tokens":1,"messages":['));
		let written = 0;
		while (written < target) {
			if (written > 0) write(comma);
			write(message);
			written += message.length + 1;
		}
		write(encoder.encode(tail));
		flush();
		return total;
	}

	it("yields max_tokens at the end, after the messages, from chunks in a reused buffer", () => {
		const scan = scanTopLevelFields(["max_tokens", "stream"]);
		let elapsed = 0;
		const bytes = streamBody(
			(chunk) => {
				const started = performance.now();
				scan.push(chunk);
				elapsed += performance.now() - started;
			},
			30_000_000,
			'],"stream":false,"max_tokens":128000}\n',
		);
		scan.end();
		expect(bytes).toBeGreaterThan(30_000_000);
		expect(scan.state).toBe("complete");
		expect(Object.fromEntries(scan.fields)).toEqual({ max_tokens: { kind: "number", value: 128_000 }, stream: { kind: "boolean", value: false } });
		// workerd's clock only moves on I/O, so this reads 0 there; under Node it is the scan's time.
		if (elapsed > 0) console.log(`json-fields: ${(bytes / 1e6 / (elapsed / 1000)).toFixed(0)} MB/s over ${(bytes / 1e6).toFixed(1)} MB`);
	});

	it("is invalid when the body ends before the top-level object closes", () => {
		const scan = scanTopLevelFields(["max_tokens"]);
		streamBody((chunk) => scan.push(chunk), 5_000_000, "]");
		scan.end();
		expect(scan.state).toBe("invalid");
	});
});
