import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type BatchResultLine, batchResultsUsage } from "../src/lib/batch-results";
import { readModel, readUsage } from "../src/lib/usage-tap";
import { feedCut, jsonText } from "./json-feed";

const encoder = new TextEncoder();

/**
 * Reads `stream` cut at `cuts` (offsets, any order), each slice copied into one buffer that is
 * overwritten with garbage after its push, as the guard's pump reuses buffers.
 */
function read(stream: string | Uint8Array, cuts: readonly number[] = []): BatchResultLine[] {
	const bytes = typeof stream === "string" ? encoder.encode(stream) : stream;
	const lines: BatchResultLine[] = [];
	const reader = batchResultsUsage((line) => lines.push(line));
	feedCut(bytes, cuts, (chunk) => reader.push(chunk), 0x0a);
	reader.end();
	return lines;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);
const own = (value: Record<string, unknown>, key: string): unknown => (Object.hasOwn(value, key) ? value[key] : undefined);

/** The reference: each non-blank line as JSON.parse reads it, usage by usage-tap's own rules. */
function reference(stream: string): BatchResultLine[] {
	const lines: BatchResultLine[] = [];
	for (const text of stream.split("\n")) {
		if (text.trim() === "") continue;
		let parsed: unknown;
		try {
			parsed = JSON.parse(text);
		} catch {
			parsed = undefined;
		}
		if (!isObject(parsed)) {
			lines.push({ succeeded: false, complete: false });
			continue;
		}
		const result = own(parsed, "result");
		const succeeded = isObject(result) && own(result, "type") === "succeeded";
		const line: BatchResultLine = { succeeded, complete: true };
		const customId = own(parsed, "custom_id");
		if (typeof customId === "string") line.customId = customId;
		const message = succeeded ? own(result, "message") : undefined;
		if (isObject(message)) {
			readUsage(message, line);
			readModel(message, line);
		}
		lines.push(line);
	}
	return lines;
}

const succeeded = (customId: string, model: string, usage: Record<string, number>) =>
	JSON.stringify({ custom_id: customId, result: { type: "succeeded", message: { id: "msg_1", type: "message", role: "assistant", model, content: [{ type: "text", text: "hi" }], stop_reason: "end_turn", usage } } });

describe("batchResultsUsage", () => {
	it("reports each succeeded line's model and usage, and other results as not succeeded", () => {
		const stream = [
			succeeded("a", "claude-a", { input_tokens: 10, output_tokens: 20, cache_creation_input_tokens: 3, cache_read_input_tokens: 4 }),
			JSON.stringify({ custom_id: "b", result: { type: "errored", error: { type: "error", error: { type: "invalid_request_error", message: "bad" } } } }),
			JSON.stringify({ custom_id: "c", result: { type: "canceled" } }),
			JSON.stringify({ custom_id: "d", result: { type: "expired" } }),
			succeeded("e", "claude-b", { input_tokens: 1, output_tokens: 2 }),
		].join("\n");
		expect(read(stream)).toEqual([
			{ customId: "a", succeeded: true, complete: true, model: "claude-a", inputTokens: 10, outputTokens: 20, cacheCreationInputTokens: 3, cacheReadInputTokens: 4 },
			{ customId: "b", succeeded: false, complete: true },
			{ customId: "c", succeeded: false, complete: true },
			{ customId: "d", succeeded: false, complete: true },
			{ customId: "e", succeeded: true, complete: true, model: "claude-b", inputTokens: 1, outputTokens: 2 },
		]);
	});

	it("reads lines the same split at every offset into two chunks, and in 1-byte chunks", () => {
		const stream = encoder.encode(
			`${succeeded("a-é😀", "claude-é", { input_tokens: 12345, output_tokens: 678 })}\r\n` +
				`{"custom_id":"b","result":{"type":"succ\\u0065eded","message":{"model":"m\\"x","content":[{"type":"tool_use","input":{"usage":{"input_tokens":999}}}],"usage":{"input_tokens":1e2,"output_tokens":5}}}}\n` +
				'{"custom_id":"c","result":{"type":"errored"}}\n',
		);
		const expected = read(stream);
		expect(expected).toEqual([
			{ customId: "a-é😀", succeeded: true, complete: true, model: "claude-é", inputTokens: 12345, outputTokens: 678 },
			{ customId: "b", succeeded: true, complete: true, model: 'm"x', inputTokens: 100, outputTokens: 5 },
			{ customId: "c", succeeded: false, complete: true },
		]);
		for (let at = 0; at <= stream.length; at++) expect(read(stream, [at]), `split at ${at}`).toEqual(expected);
		expect(read(stream, Array.from(stream.keys()))).toEqual(expected);
	});

	it("skips blank lines, and reports a last line without its newline when the stream ends", () => {
		const lines: BatchResultLine[] = [];
		const reader = batchResultsUsage((line) => lines.push(line));
		reader.push(encoder.encode(`\n  \r\n${succeeded("a", "m", { input_tokens: 1, output_tokens: 1 })}\n\n{"custom_id":"b","result":{"type":"canceled"}}`));
		expect(lines.map((line) => line.customId)).toEqual(["a"]);
		reader.end();
		expect(lines.map((line) => line.customId)).toEqual(["a", "b"]);
		reader.end();
		expect(lines).toHaveLength(2);
	});

	it("takes the last of duplicate keys at every level of a line", () => {
		const cases: [string, Partial<BatchResultLine>][] = [
			['{"custom_id":"a","custom_id":"b","result":{"type":"canceled"}}', { customId: "b", succeeded: false }],
			['{"custom_id":"a","custom_id":7,"result":{"type":"canceled"}}', { succeeded: false }],
			['{"result":{"type":"errored"},"result":{"type":"succeeded","message":{"usage":{"input_tokens":1}}}}', { succeeded: true, inputTokens: 1 }],
			['{"result":{"type":"succeeded","message":{"usage":{"input_tokens":1}}},"result":{"type":"errored"}}', { succeeded: false }],
			['{"result":{"type":"succeeded","message":{"usage":{"input_tokens":1}}},"result":{"type":"succeeded"}}', { succeeded: true }],
			['{"result":{"type":"succeeded","type":"expired"}}', { succeeded: false }],
			['{"result":{"type":"succeeded","message":{"model":"a","usage":{"input_tokens":1}},"message":{"usage":{"output_tokens":2}}}}', { succeeded: true, outputTokens: 2 }],
			['{"result":{"type":"succeeded","message":{"model":"a","model":"b","usage":{"input_tokens":1},"usage":{"output_tokens":2}}}}', { succeeded: true, model: "b", outputTokens: 2 }],
			['{"result":{"type":"succeeded","message":{"usage":{"input_tokens":1,"input_tokens":3,"output_tokens":2,"output_tokens":null}}}}', { succeeded: true, inputTokens: 3 }],
			['{"result":{"type":"succeeded","message":{"usage":{"input_tokens":1},"usage":[{"input_tokens":5}]}}}', { succeeded: true }],
			['{"result":{"type":"succeeded","message":{"model":"a","usage":{"input_tokens":1}},"message":null}}', { succeeded: true }],
		];
		for (const [line, expected] of cases) {
			expect(read(line), line).toEqual([{ complete: true, ...expected }]);
			expect(read(line), line).toEqual(reference(line));
		}
	});

	it("compares keys after decoding their escapes", () => {
		const line = '{"custom\\u005fid":"a","re\\u0073ult":{"typ\\u0065":"succeeded","m\\u0065ssage":{"mod\\u0065l":"m","us\\u0061ge":{"input_tok\\u0065ns":4,"cache_read_input_tokens":2}}}}';
		expect(read(line)).toEqual([{ customId: "a", succeeded: true, complete: true, model: "m", inputTokens: 4, cacheReadInputTokens: 2 }]);
	});

	it("does not take usage or model keys nested anywhere but the result's message", () => {
		const line = JSON.stringify({
			custom_id: "a",
			usage: { input_tokens: 1000 },
			model: "line-level",
			result: {
				type: "succeeded",
				usage: { input_tokens: 2000 },
				model: "result-level",
				message: {
					content: [{ type: "tool_use", input: { model: "tool", usage: { input_tokens: 3000, output_tokens: 3000 } } }],
					usage: { input_tokens: 7, output_tokens: 8, server_tool_use: { input_tokens: 4000 } },
					metadata: { model: "meta" },
					model: "real",
				},
			},
		});
		expect(read(line)).toEqual([{ customId: "a", succeeded: true, complete: true, model: "real", inputTokens: 7, outputTokens: 8 }]);
	});

	it("reports no usage for a line that did not succeed, even with a message", () => {
		const line = '{"custom_id":"a","result":{"type":"errored","message":{"model":"m","usage":{"input_tokens":5}}}}';
		expect(read(line)).toEqual([{ customId: "a", succeeded: false, complete: true }]);
	});

	it("keeps only counters that are whole, non-negative, safe numbers, and only a non-empty model", () => {
		const line = '{"result":{"type":"succeeded","message":{"model":"","usage":{"input_tokens":-1,"output_tokens":1.5,"cache_creation_input_tokens":"3","cache_read_input_tokens":1e400}}}}';
		expect(read(line)).toEqual([{ succeeded: true, complete: true }]);
		expect(read(line)).toEqual(reference(line));
	});

	it("marks a malformed line incomplete and reads the lines after it", () => {
		const stream = `{"custom_id":"a","result":{"type":"succeeded"}} trailing\nnot json\n[]\n{"custom_id":"b",}\n${succeeded("c", "m", { input_tokens: 1, output_tokens: 2 })}\n`;
		expect(read(stream)).toEqual([
			{ customId: "a", succeeded: true, complete: false },
			{ succeeded: false, complete: false },
			{ succeeded: false, complete: false },
			{ customId: "b", succeeded: false, complete: false },
			{ customId: "c", succeeded: true, complete: true, model: "m", inputTokens: 1, outputTokens: 2 },
		]);
	});

	it("marks a line cut off by the stream's end incomplete, with what was read before the cut", () => {
		const whole = succeeded("a", "m", { input_tokens: 10, output_tokens: 20 });
		const cut = whole.slice(0, whole.indexOf('"output_tokens"'));
		expect(read(cut)).toEqual([{ customId: "a", succeeded: true, complete: false, model: "m", inputTokens: 10 }]);
	});

	it("reads the usage after 20 MB of content in a line, through a reused 64 KiB buffer", () => {
		const lines: BatchResultLine[] = [];
		const reader = batchResultsUsage((line) => lines.push(line));
		const buffer = new Uint8Array(64 * 1024);
		const text = encoder.encode(`${"lorem \\\"ipsum\\\" \\u00e9 \\n ".repeat(1000)}`);
		const parts = [encoder.encode('{"custom_id":"long","result":{"type":"succeeded","message":{"model":"m","content":[{"type":"text","text":"')];
		let length = 0;
		while (length < 20_000_000) {
			parts.push(text);
			length += text.length;
		}
		parts.push(encoder.encode('"}],"usage":{"input_tokens":5,"output_tokens":4000000}}}}\n'));
		let filled = 0;
		for (const part of parts) {
			for (let at = 0; at < part.length; ) {
				const slice = part.subarray(at, at + buffer.length - filled);
				buffer.set(slice, filled);
				filled += slice.length;
				at += slice.length;
				if (filled === buffer.length) {
					reader.push(buffer);
					buffer.fill(0x7b);
					filled = 0;
				}
			}
		}
		reader.push(buffer.subarray(0, filled));
		reader.end();
		expect(lines).toEqual([{ customId: "long", succeeded: true, complete: true, model: "m", inputTokens: 5, outputTokens: 4_000_000 }]);
	});
});

// Generated results streams against JSON.parse. Keys and strings are written in the many ways
// JSON allows; duplicates and look-alike keys at every level come from drawing members with repeats.

const ws = fc.constantFrom("", "", " ", "\t", " \r");

const text = jsonText;
const COUNTERS = ["input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"];
const KEYS = ["custom_id", "result", "type", "message", "model", "usage", ...COUNTERS, "Usage", "input_token", ""];
const key = text(fc.constantFrom(...KEYS));
const number = fc.oneof({ weight: 4, arbitrary: fc.nat(1_000_000).map(String) }, fc.constantFrom("-1", "1.5", "1e3", "100.0", "-0", "9007199254740993", "1e400"));
const strings = ["succeeded", "errored", "canceled", "expired", "claude-é", "😀", "", 'q"\\\n'];

const { filler } = fc.letrec<{ filler: string; member: string }>((tie) => ({
	filler: fc.oneof(
		{ depthSize: "small", withCrossShrink: true },
		number,
		text(fc.oneof(fc.constantFrom(...strings), fc.string({ maxLength: 8 }))),
		fc.constantFrom("true", "false", "null"),
		fc.array(tie("filler"), { maxLength: 3 }).map((items) => `[${items.join(",")}]`),
		fc.array(tie("member"), { maxLength: 4 }).map((members) => `{${members.join(",")}}`),
	),
	member: fc.tuple(ws, key, ws, ws, tie("filler"), ws).map(([a, k, b, c, v, d]) => `${a}${k}${b}:${c}${v}${d}`),
}));

const member = (name: fc.Arbitrary<string>, value: fc.Arbitrary<string>) => fc.tuple(ws, text(name), ws, ws, value, ws).map(([a, k, b, c, v, d]) => `${a}${k}${b}:${c}${v}${d}`);
const objectOf = (members: fc.Arbitrary<string>, maxLength: number) => fc.tuple(fc.array(members, { maxLength }), ws).map(([list, empty]) => `{${list.join(",") || empty}}`);
const or = (value: fc.Arbitrary<string>) => fc.oneof({ weight: 6, arbitrary: value }, filler);

const usage = objectOf(fc.oneof({ weight: 4, arbitrary: member(fc.constantFrom(...COUNTERS), or(number)) }, member(fc.constantFrom(...KEYS), filler)), 5);
const message = objectOf(
	fc.oneof(
		{ weight: 3, arbitrary: member(fc.constant("usage"), or(usage)) },
		{ weight: 2, arbitrary: member(fc.constant("model"), or(text(fc.constantFrom(...strings)))) },
		member(fc.constantFrom(...KEYS), filler),
	),
	4,
);
const result = objectOf(
	fc.oneof(
		{ weight: 3, arbitrary: member(fc.constant("type"), or(text(fc.constantFrom("succeeded", "succeeded", "errored", "canceled", "expired")))) },
		{ weight: 3, arbitrary: member(fc.constant("message"), or(message)) },
		member(fc.constantFrom(...KEYS), filler),
	),
	4,
);
const line = objectOf(
	fc.oneof(
		{ weight: 3, arbitrary: member(fc.constant("result"), or(result)) },
		{ weight: 2, arbitrary: member(fc.constant("custom_id"), or(text(fc.string({ maxLength: 10 })))) },
		member(fc.constantFrom(...KEYS), filler),
	),
	4,
);
const stream = fc
	.tuple(fc.array(fc.tuple(ws, line, ws, fc.constantFrom("\n", "\n", "\r\n", "\n\n")), { maxLength: 6 }), fc.boolean())
	.map(([lines, newlineAtEnd]) => {
		const joined = lines.map((parts) => parts.join("")).join("");
		return newlineAtEnd ? joined : joined.replace(/\r?\n+$/, "");
	});

// A new seed each run, to explore further over time; fast-check prints it with any counterexample.
const seed = Math.floor(Math.random() * 0x7fffffff);

describe("batchResultsUsage on generated streams", () => {
	it("reads every generated line as JSON.parse and readUsage do, however the stream is cut", () => {
		fc.assert(
			fc.property(stream, fc.array(fc.nat(), { maxLength: 16 }), (jsonl, cuts) => {
				expect(read(jsonl, cuts)).toEqual(reference(jsonl));
			}),
			{ seed, numRuns: 300 },
		);
	});
});
