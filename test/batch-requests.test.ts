import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type BatchScan, MAX_BATCH_MODELS, scanBatchRequests } from "../src/lib/json/batch-requests";
import { STRING_CAPTURE_LIMIT } from "../src/lib/json/string-capture";
import { feedCut, jsonText } from "./json-feed";

const encoder = new TextEncoder();

/** What a scan reports, in a form `toEqual` compares; models in the order they were first counted. */
type Summary =
	| { state: "invalid" }
	| {
			state: "complete";
			requestsArray: boolean;
			requests: number;
			byModel: [string, { requests: number; maxTokens: number }][];
			unknown: { requests: number; maxTokens: number };
			missingMaxTokens: number;
	  };

function summary(scan: BatchScan): Summary {
	expect(scan.state).not.toBe("scanning");
	if (scan.state === "invalid") return { state: "invalid" };
	return {
		state: "complete",
		requestsArray: scan.requestsArray,
		requests: scan.requests,
		byModel: [...scan.byModel].map(([model, tally]) => [model, { ...tally }]),
		unknown: { ...scan.unknown },
		missingMaxTokens: scan.missingMaxTokens,
	};
}

/**
 * Scans `body` cut at `cuts` (offsets, any order), each slice copied into one buffer that is
 * overwritten with garbage after its push, as the guard's pump reuses buffers: a scanner that kept
 * a chunk would read the garbage.
 */
function scan(body: string | Uint8Array, cuts: readonly number[] = []): BatchScan {
	const bytes = typeof body === "string" ? encoder.encode(body) : body;
	const scanner = scanBatchRequests();
	feedCut(bytes, cuts, (chunk) => scanner.push(chunk), 0x22);
	scanner.end();
	return scanner;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);
const own = (value: Record<string, unknown>, key: string): unknown => (Object.hasOwn(value, key) ? value[key] : undefined);

/** The reference: the body as `JSON.parse(new TextDecoder().decode(body))` reads it, tallied as the scan documents. */
function reference(body: string | Uint8Array): Summary {
	let parsed: unknown;
	try {
		parsed = JSON.parse(typeof body === "string" ? body : new TextDecoder().decode(body));
	} catch {
		return { state: "invalid" };
	}
	if (!isObject(parsed)) return { state: "invalid" };
	const requests = own(parsed, "requests");
	const list = Array.isArray(requests) ? (requests as unknown[]) : [];
	const byModel = new Map<string, { requests: number; maxTokens: number }>();
	const unknown = { requests: 0, maxTokens: 0 };
	let missingMaxTokens = 0;
	for (const request of list) {
		const params = isObject(request) ? own(request, "params") : undefined;
		const model = isObject(params) ? own(params, "model") : undefined;
		const maxTokens = isObject(params) ? own(params, "max_tokens") : undefined;
		let tokens = 0;
		if (typeof maxTokens === "number" && Number.isSafeInteger(maxTokens) && maxTokens >= 0) tokens = maxTokens;
		else missingMaxTokens++;
		let counted = typeof model === "string" ? byModel.get(model) : unknown;
		if (counted === undefined && byModel.size < MAX_BATCH_MODELS) {
			counted = { requests: 0, maxTokens: 0 };
			byModel.set(model as string, counted);
		}
		counted ??= unknown;
		counted.requests++;
		counted.maxTokens += tokens;
	}
	return { state: "complete", requestsArray: Array.isArray(requests), requests: list.length, byModel: [...byModel], unknown, missingMaxTokens };
}

const tally = (requests: number, maxTokens: number) => ({ requests, maxTokens });

describe("scanBatchRequests", () => {
	it("counts the requests of each model and sums their max_tokens", () => {
		const body = JSON.stringify({
			requests: [
				{ custom_id: "a", params: { model: "claude-a", max_tokens: 100, messages: [{ role: "user", content: "hi" }] } },
				{ custom_id: "b", params: { model: "claude-b", max_tokens: 20, messages: [] } },
				{ custom_id: "c", params: { max_tokens: 7, model: "claude-a", system: "be brief" } },
			],
		});
		expect(summary(scan(body))).toEqual({
			state: "complete",
			requestsArray: true,
			requests: 3,
			byModel: [
				["claude-a", tally(2, 107)],
				["claude-b", tally(1, 20)],
			],
			unknown: tally(0, 0),
			missingMaxTokens: 0,
		});
	});

	it("reads a body the same split at every offset into two chunks, and in 1-byte chunks", () => {
		const body = encoder.encode(
			`\ufeff {"requests" : [ {"custom_id":"x\\"y","params":{"model":"cl\\u0061ude-é😀","max_tokens":1e3,"messages":[{"role":"user","content":[{"type":"text","text":"\\\\\\"model\\":"}],"model":"nope"}]}},` +
				`{"params":{"max_tokens":12,"mod\\u0065l":"cl\\u0061ude-é😀"},"model":"top"} , {"params":{"model":"b","max_tokens":-0.0}} ],"max_tokens":5}\n`,
		);
		const expected = reference(body);
		expect(expected).toEqual({
			state: "complete",
			requestsArray: true,
			requests: 3,
			byModel: [
				["claude-é😀", tally(2, 1012)],
				["b", tally(1, 0)],
			],
			unknown: tally(0, 0),
			missingMaxTokens: 0,
		});
		for (let at = 0; at <= body.length; at++) expect(summary(scan(body, [at])), `split at ${at}`).toEqual(expected);
		expect(summary(scan(body, Array.from(body.keys())))).toEqual(expected);
	});

	it("takes the last of two model keys split across chunks", () => {
		const body = '{"requests":[{"params":{"model":"first","max_tokens":1,"model":"second"}}]}';
		for (let at = 0; at <= body.length; at++) {
			expect(summary(scan(body, [at])), `split at ${at}`).toMatchObject({ byModel: [["second", tally(1, 1)]], unknown: tally(0, 0) });
		}
	});

	it("takes the last of two max_tokens, and a later non-number one makes it missing", () => {
		expect(summary(scan('{"requests":[{"params":{"max_tokens":1,"model":"m","max_tokens":30}}]}'))).toMatchObject({ byModel: [["m", tally(1, 30)]], missingMaxTokens: 0 });
		expect(summary(scan('{"requests":[{"params":{"max_tokens":1,"model":"m","max_tokens":"30"}}]}'))).toMatchObject({ byModel: [["m", tally(1, 0)]], missingMaxTokens: 1 });
	});

	it("takes a later model that is not a string as no model", () => {
		expect(summary(scan('{"requests":[{"params":{"model":"m","max_tokens":4,"model":{"id":"m"}}}]}'))).toMatchObject({ byModel: [], unknown: tally(1, 4) });
	});

	it("takes the last of two params of one request, forgetting what the first named", () => {
		const body = '{"requests":[{"params":{"model":"first","max_tokens":9},"custom_id":"a","params":{"messages":[]}}]}';
		expect(summary(scan(body))).toMatchObject({ requests: 1, byModel: [], unknown: tally(1, 0), missingMaxTokens: 1 });
		const replaced = '{"requests":[{"params":{"model":"first","max_tokens":9},"params":null}]}';
		expect(summary(scan(replaced))).toMatchObject({ requests: 1, byModel: [], unknown: tally(1, 0), missingMaxTokens: 1 });
	});

	it("takes the last of two requests arrays, forgetting what the first counted", () => {
		const body = '{"requests":[{"params":{"model":"a","max_tokens":1}},{"params":{"model":"a","max_tokens":2}}],"requests":[{"params":{"model":"b","max_tokens":3}}]}';
		expect(summary(scan(body))).toEqual({ state: "complete", requestsArray: true, requests: 1, byModel: [["b", tally(1, 3)]], unknown: tally(0, 0), missingMaxTokens: 0 });
	});

	it("takes a later requests member that is no array as no requests at all", () => {
		for (const later of ["null", "5", '"x"', '{"params":{"model":"a","max_tokens":1}}']) {
			const body = `{"requests":[{"params":{"model":"a","max_tokens":1}}],"requests":${later}}`;
			expect(summary(scan(body)), later).toEqual({ state: "complete", requestsArray: false, requests: 0, byModel: [], unknown: tally(0, 0), missingMaxTokens: 0 });
		}
		expect(summary(scan('{"model":"a"}'))).toMatchObject({ state: "complete", requestsArray: false, requests: 0 });
	});

	it("compares keys after decoding their escapes, at every level", () => {
		const body = '{"re\\u0071uests":[{"p\\u0061rams":{"mod\\u0065l":"m","max\\u005Ftokens":8,"\\u006d\\u006f\\u0064\\u0065\\u006c":"n"}}]}';
		expect(summary(scan(body))).toMatchObject({ requests: 1, byModel: [["n", tally(1, 8)]] });
		// Near misses are other keys.
		expect(summary(scan('{"requests":[{"params":{"Model":"m","model ":"m","max_token":8,"max_tokens\\u0000":8}}]}'))).toMatchObject({ unknown: tally(1, 0), missingMaxTokens: 1 });
	});

	it("does not count model or max_tokens keys outside a request's params", () => {
		const body = JSON.stringify({
			model: "top",
			max_tokens: 1000,
			metadata: { requests: [{ params: { model: "meta", max_tokens: 1 } }] },
			requests: [
				{
					custom_id: "a",
					model: "request-level",
					max_tokens: 50,
					params: {
						model: "real",
						max_tokens: 10,
						messages: [
							{ role: "user", content: [{ type: "tool_result", content: { model: "nested", max_tokens: 99, params: { model: "deeper" } } }] },
							{ model: "in-a-message", max_tokens: 77 },
						],
						tools: [{ name: "t", input_schema: { properties: { model: { type: "string" }, max_tokens: { type: "number" } } } }],
						metadata: { model: "in-metadata" },
					},
				},
			],
		});
		expect(summary(scan(body))).toEqual({ state: "complete", requestsArray: true, requests: 1, byModel: [["real", tally(1, 10)]], unknown: tally(0, 0), missingMaxTokens: 0 });
	});

	it("counts a request without a string model as unknown, with its max_tokens", () => {
		const requests = [
			'{"params":{"max_tokens":3}}',
			'{"params":{"model":null,"max_tokens":4}}',
			'{"params":{"model":7,"max_tokens":5}}',
			'{"params":{"model":["m"],"max_tokens":6}}',
			'{"params":"m"}',
			'{"params":["m"]}',
			'{"custom_id":"no-params"}',
			"{}",
			'"a string"',
			"[]",
			'[{"params":{"model":"m","max_tokens":1}}]',
			"12",
			"null",
		];
		const body = `{"requests":[${requests.join(",")}]}`;
		expect(summary(scan(body))).toEqual(reference(body));
		expect(summary(scan(body))).toMatchObject({ requests: requests.length, byModel: [], unknown: tally(requests.length, 3 + 4 + 5 + 6), missingMaxTokens: requests.length - 4 });
	});

	it("counts a max_tokens that is not a non-negative safe integer as 0, and marks it missing", () => {
		const values = ["-1", "1.5", '"100"', "null", "true", "9007199254740992", "1e400", "[1]", '{"max_tokens":1}'];
		const body = `{"requests":[${values.map((value) => `{"params":{"model":"m","max_tokens":${value}}}`).join(",")},{"params":{"model":"m"}}]}`;
		expect(summary(scan(body))).toMatchObject({ requests: values.length + 1, byModel: [["m", tally(values.length + 1, 0)]], missingMaxTokens: values.length + 1 });
	});

	it("reads max_tokens as JSON.parse does, whatever its spelling", () => {
		const values = ["1e3", "100.0", "0.5e1", "-0", "123456789", "1000000000000000000000e-21", `1${"0".repeat(5)}.${"0".repeat(900)}`];
		const body = `{"requests":[${values.map((value) => `{"params":{"model":"m","max_tokens":${value}}}`).join(",")}]}`;
		expect(summary(scan(body))).toEqual(reference(body));
		expect(summary(scan(body))).toMatchObject({ byModel: [["m", tally(values.length, 1000 + 100 + 5 + 0 + 123456789 + 1 + 100000)]], missingMaxTokens: 0 });
	});

	it(`keeps ${MAX_BATCH_MODELS} models apart and counts requests for any further model as unknown`, () => {
		const models = Array.from({ length: MAX_BATCH_MODELS + 6 }, (_, index) => `model-${index}`);
		const body = JSON.stringify({ requests: [...models, "model-0", "model-70"].map((model) => ({ params: { model, max_tokens: 10 } })) });
		const scanned = scan(body);
		expect(summary(scanned)).toEqual(reference(body));
		expect(scanned.byModel.size).toBe(MAX_BATCH_MODELS);
		expect(scanned.byModel.get("model-0")).toEqual(tally(2, 20));
		expect(scanned.byModel.has(`model-${MAX_BATCH_MODELS}`)).toBe(false);
		expect(scanned.unknown).toEqual(tally(7, 70));
	});

	it("counts a model name too long to capture as unknown", () => {
		const long = "m".repeat(STRING_CAPTURE_LIMIT + 1);
		const fits = "m".repeat(STRING_CAPTURE_LIMIT);
		const body = JSON.stringify({ requests: [long, fits].map((model) => ({ params: { model, max_tokens: 1 } })) });
		expect(summary(scan(body))).toMatchObject({ byModel: [[fits, tally(1, 1)]], unknown: tally(1, 1) });
	});

	it("reports the requests read so far while the body streams", () => {
		const scanner = scanBatchRequests();
		scanner.push(encoder.encode('{"requests":[{"params":{"model":"a","max_tokens":5}},{"params":{"model":"b","max_'));
		expect(scanner.state).toBe("scanning");
		expect(scanner.requests).toBe(1);
		expect([...scanner.byModel]).toEqual([["a", tally(1, 5)]]);
		scanner.push(encoder.encode('tokens":6}}]}'));
		expect(scanner.state).toBe("complete");
		expect(scanner.requests).toBe(2);
	});

	it("marks invalid JSON invalid, and a body cut short invalid at its end", () => {
		const invalid = [
			"",
			"[]",
			'"requests"',
			'{"requests":[{"params":{"model":"a","max_tokens":1}}]',
			'{"requests":[{"params":{"model":"a","max_tokens":1}}]}}',
			'{"requests":[{"params":{"model":"a","max_tokens":01}}]}',
			'{"requests":[{"params":{"model":"a",}}]}',
			'{"requests":[{"params":{"model":"a"}},]}',
			'{"requests":[{"params":{"mod\\el":"a"}}]}',
			'{"requests":[{"params":{"model":"\\u00zz"}}]}',
			'{"requests":[{"params":{"model":"a"}]]}',
			"{'requests':[]}",
			'{"requests":[]} x',
		];
		for (const body of invalid) {
			expect(reference(body), body).toEqual({ state: "invalid" });
			expect(scan(body).state, body).toBe("invalid");
		}
		const cut = scanBatchRequests();
		const start = '{"requests":[{"params":{"model":"a","max_tokens":1}}';
		cut.push(encoder.encode(start));
		expect(cut.state).toBe("scanning");
		cut.end();
		expect(cut.state).toBe("invalid");
		expect(cut.problem).toEqual({ kind: "truncated", at: start.length });
	});

	it("holds no more than its model names and a few nesting words over a 50 MB body in a reused buffer", () => {
		const scanner = scanBatchRequests();
		const buffer = new Uint8Array(64 * 1024);
		let filled = 0;
		let held = 0;
		let total = 0;
		const flush = () => {
			scanner.push(buffer.subarray(0, filled));
			buffer.fill(0x5b, 0, filled);
			total += filled;
			filled = 0;
			held = Math.max(held, scanner.heldBytes);
		};
		const write = (bytes: Uint8Array) => {
			for (let at = 0; at < bytes.length; ) {
				const part = bytes.subarray(at, at + buffer.length - filled);
				buffer.set(part, filled);
				filled += part.length;
				at += part.length;
				if (filled === buffer.length) flush();
			}
		};
		const distinct = 1000;
		// A model name near the capture limit: a scan that kept every model would hold ~300 KB.
		const padding = "x".repeat(120);
		const text = `lorem \\"ipsum\\" \\u00e9 {\\"model\\":\\"no\\"} ${"dolor sit amet ".repeat(300)}`;
		write(encoder.encode('{"requests":['));
		let requests = 0;
		let maxTokens = 0;
		while (total + filled < 50_000_000) {
			const request = `${requests > 0 ? "," : ""}{"custom_id":"r${requests}","params":{"model":"model-${requests % distinct}-${padding}","max_tokens":${requests % 997},"messages":[{"role":"user","content":[{"type":"text","text":"${text}"}],"model":"nested"}]}}`;
			write(encoder.encode(request));
			maxTokens += requests % 997;
			requests++;
		}
		write(encoder.encode("]}"));
		flush();
		scanner.end();
		expect(total).toBeGreaterThan(50_000_000);
		expect(scanner.state).toBe("complete");
		expect(scanner.requests).toBe(requests);
		expect(scanner.byModel.size).toBe(MAX_BATCH_MODELS);
		let counted = scanner.unknown.maxTokens;
		for (const tallied of scanner.byModel.values()) counted += tallied.maxTokens;
		expect(counted).toBe(maxTokens);
		// At most 64 names of at most 256 UTF-16 units and their entries, and no nesting words.
		expect(held).toBeLessThanOrEqual(MAX_BATCH_MODELS * (2 * STRING_CAPTURE_LIMIT + 64));
		expect(held).toBeGreaterThan(0);
	});
});

// Generated batch bodies against JSON.parse. Keys and strings are written in the many ways JSON
// allows; duplicates and look-alike keys at every level come from drawing members with repeats.

const ws = fc.constantFrom("", "", " ", "\n", "\t \r\n");

const text = jsonText;
const KEYS = ["model", "max_tokens", "params", "requests", "custom_id", "messages", "Model", "max_token", "param", ""];
const key = text(fc.constantFrom(...KEYS));
const MODELS = ["claude-a", "claude-b", "claude-é", "😀", "", "model", "__proto__", 'q"\\\n'];
const number = fc.oneof(
	{ weight: 4, arbitrary: fc.nat(200_000).map(String) },
	fc.constantFrom("-1", "1.5", "1e3", "100.0", "0", "-0", "9007199254740993", "1e400", "2.5e-3", "64000"),
);

const { filler } = fc.letrec<{ filler: string; member: string }>((tie) => ({
	filler: fc.oneof(
		{ depthSize: "small", withCrossShrink: true },
		number,
		text(fc.oneof(fc.constantFrom(...MODELS), fc.string({ maxLength: 8 }))),
		fc.constantFrom("true", "false", "null"),
		fc.array(tie("filler"), { maxLength: 3 }).map((items) => `[${items.join(",")}]`),
		fc.array(tie("member"), { maxLength: 4 }).map((members) => `{${members.join(",")}}`),
	),
	member: fc.tuple(ws, key, ws, ws, tie("filler"), ws).map(([a, k, b, c, v, d]) => `${a}${k}${b}:${c}${v}${d}`),
}));

const member = (name: fc.Arbitrary<string>, value: fc.Arbitrary<string>) => fc.tuple(ws, text(name), ws, ws, value, ws).map(([a, k, b, c, v, d]) => `${a}${k}${b}:${c}${v}${d}`);
const objectOf = (members: fc.Arbitrary<string>, maxLength: number) => fc.tuple(fc.array(members, { maxLength }), ws).map(([list, empty]) => `{${list.join(",") || empty}}`);

const modelValue = fc.oneof({ weight: 5, arbitrary: text(fc.constantFrom(...MODELS)) }, filler);
const maxTokensValue = fc.oneof({ weight: 5, arbitrary: number }, filler);
const params = objectOf(
	fc.oneof(
		{ weight: 3, arbitrary: member(fc.constant("model"), modelValue) },
		{ weight: 3, arbitrary: member(fc.constant("max_tokens"), maxTokensValue) },
		member(fc.constantFrom("messages", "system", "Model", "max_token"), filler),
	),
	5,
);
const request = fc.oneof(
	{
		weight: 8,
		arbitrary: objectOf(
			fc.oneof(
				{ weight: 4, arbitrary: member(fc.constant("params"), fc.oneof({ weight: 6, arbitrary: params }, filler)) },
				member(fc.constant("custom_id"), text(fc.string({ maxLength: 6 }))),
				member(fc.constantFrom("model", "max_tokens", "requests"), filler),
			),
			3,
		),
	},
	filler,
);
const requests = fc.tuple(fc.array(fc.tuple(ws, request, ws), { maxLength: 6 }), ws).map(([list, empty]) => `[${list.map((item) => item.join("")).join(",") || empty}]`);
const body = fc
	.tuple(
		fc.constantFrom("", "", "\ufeff"),
		ws,
		objectOf(fc.oneof({ weight: 4, arbitrary: member(fc.constant("requests"), fc.oneof({ weight: 6, arbitrary: requests }, filler)) }, member(fc.constantFrom(...KEYS), filler)), 4),
		ws,
	)
	.map((parts) => encoder.encode(parts.join("")));
const cuts = fc.array(fc.nat(), { maxLength: 16 });

/** An edit on the bytes: delete, insert or replace at a position, with bytes that matter to JSON or to UTF-8 (no raw control bytes, which the scanner accepts inside strings and JSON.parse does not). */
const edit = fc.tuple(
	fc.constantFrom("delete", "insert", "replace"),
	fc.nat(),
	fc.oneof(fc.constantFrom(...'{}[],:"\\0123456789-.eEtrufalsn /u'.split("").map((char) => char.charCodeAt(0))), fc.integer({ min: 0x80, max: 0xff })),
);

function edited(bytes: Uint8Array, edits: readonly (readonly [string, number, number])[]): Uint8Array {
	const out = [...bytes];
	for (const [kind, position, byte] of edits) {
		const at = position % (out.length + 1);
		if (kind === "delete") out.splice(at, 1);
		else if (kind === "insert") out.splice(at, 0, byte);
		else if (at < out.length) out[at] = byte;
	}
	return Uint8Array.from(out);
}

// A new seed each run, to explore further over time; fast-check prints it with any counterexample.
const seed = Math.floor(Math.random() * 0x7fffffff);

describe("scanBatchRequests on generated bodies", () => {
	it("reads every generated batch as JSON.parse does, however it is cut", () => {
		fc.assert(
			fc.property(body, cuts, (bytes, at) => {
				expect(summary(scan(bytes, at))).toEqual(reference(bytes));
			}),
			{ seed, numRuns: 400 },
		);
	});

	it("marks a damaged batch invalid exactly when JSON.parse throws, and otherwise reads it as JSON.parse does", () => {
		fc.assert(
			fc.property(body, fc.array(edit, { minLength: 1, maxLength: 3 }), cuts, (bytes, edits, at) => {
				const damaged = edited(bytes, edits);
				expect(summary(scan(damaged, at))).toEqual(reference(damaged));
			}),
			{ seed, numRuns: 400 },
		);
	});
});
