import { describe, expect, it } from "vitest";
import { type ReportedUsage, usageInTail, usageReader } from "../src/lib/usage-tap";
import { sseUsageTap } from "../src/sse/sse-usage";

async function throughSse(parts: (string | Uint8Array)[]): Promise<{ out: string; usage: ReportedUsage | undefined; calls: number }> {
	let usage: ReportedUsage | undefined;
	let calls = 0;
	const source = new ReadableStream<Uint8Array>({
		start(controller) {
			for (const part of parts) controller.enqueue(typeof part === "string" ? new TextEncoder().encode(part) : part);
			controller.close();
		},
	});
	const out = await new Response(
		source.pipeThrough(
			sseUsageTap((seen) => {
				usage = { ...seen };
				calls++;
			}),
		),
	).text();
	return { out, usage, calls };
}

function readJson(body: string, chunkSize = 64 * 1024): ReportedUsage {
	const bytes = new TextEncoder().encode(body);
	const reader = usageReader();
	for (let i = 0; i < bytes.length; i += chunkSize) reader.push(bytes.subarray(i, i + chunkSize));
	return reader.end();
}

function split(text: string, size: number): string[] {
	const parts: string[] = [];
	for (let i = 0; i < text.length; i += size) parts.push(text.slice(i, i + size));
	return parts;
}

const SSE = [
	'event: message_start\ndata: {"type":"message_start","message":{"model":"claude-sonnet-4-6","usage":{"input_tokens":25,"cache_creation_input_tokens":3,"cache_read_input_tokens":5,"output_tokens":1}}}\n\n',
	'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"text":"a \\"usage\\" word"}}\n\n',
	'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":7}}\n\n',
	'event: message_delta\ndata: {"type":"message_delta","delta":{},"usage":{"output_tokens":42}}\n\n',
	'event: message_stop\ndata: {"type":"message_stop"}\n\n',
].join("");
// The delta's text, `a "usage" word`, is what a client was given of the answer: 14 bytes.
const SEEN = { inputTokens: 25, cacheCreationInputTokens: 3, cacheReadInputTokens: 5, outputTokens: 42, model: "claude-sonnet-4-6", finished: true, deliveredOutputBytes: 14 };

describe("the SSE usage tap", () => {
	it("reads the model, input, cache counts and final output count from a stream split anywhere, passing it through unchanged", async () => {
		for (const size of [1, 7, 64, SSE.length]) {
			const { out, usage, calls } = await throughSse(split(SSE, size));
			expect(out).toBe(SSE);
			expect(usage).toEqual(SEEN);
			expect(calls).toBe(1);
		}
	});

	it("reads a stream framed with CR alone, and one framed with CRLF, as the stream guard does", async () => {
		for (const newline of ["\r", "\r\n"]) {
			const framed = SSE.replaceAll("\n", newline);
			for (const size of [1, 5, framed.length]) {
				const { out, usage } = await throughSse(split(framed, size));
				expect(out).toBe(framed);
				expect(usage).toEqual(SEEN);
			}
		}
	});

	it("passes over an event too long to hold and still reads the ones after it", async () => {
		const huge = `event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"text":"${"x".repeat(300 * 1024)}"}}\n\n`;
		const { usage } = await throughSse(split(huge + SSE, 16 * 1024));
		expect(usage).toEqual(SEEN);
	});

	it("reports nothing it did not see", async () => {
		expect((await throughSse(["event: ping\ndata: {}\n\n"])).usage).toEqual({});
	});

	it("counts the text, thinking and tool-input deltas a stream cut before its end delivered, in UTF-8 bytes, and leaves it unfinished", async () => {
		const delta = (delta: Record<string, unknown>) => `event: content_block_delta\ndata: ${JSON.stringify({ type: "content_block_delta", index: 0, delta })}\n\n`;
		const cut = [
			'event: message_start\ndata: {"type":"message_start","message":{"model":"m","usage":{"input_tokens":9,"output_tokens":1}}}\n\n',
			delta({ type: "thinking_delta", thinking: "hmm" }),
			delta({ type: "text_delta", text: "héllo" }),
			delta({ type: "input_json_delta", partial_json: '{"a":1}' }),
			delta({ type: "signature_delta", signature: "not output" }),
		].join("");
		const { usage } = await throughSse(split(cut, 13));
		// 3 + 6 (é is two bytes) + 7; the signature is not output text.
		expect(usage).toEqual({ inputTokens: 9, outputTokens: 1, model: "m", deliveredOutputBytes: 16 });
	});
});

describe("the JSON usage reader", () => {
	const message = (text: string, extra: Record<string, unknown> = {}) =>
		JSON.stringify({
			id: "msg_1",
			type: "message",
			role: "assistant",
			model: "claude-opus-4-1",
			content: [{ type: "text", text }],
			stop_reason: "end_turn",
			stop_sequence: null,
			usage: { input_tokens: 11, cache_read_input_tokens: 900, output_tokens: 3 },
			...extra,
		});

	it("reads usage and model from a small message split anywhere", () => {
		const body = message("hello");
		for (const size of [1, 10, body.length]) expect(readJson(body, size)).toEqual({ inputTokens: 11, cacheReadInputTokens: 900, outputTokens: 3, model: "claude-opus-4-1", finished: true });
	});

	it("reads usage and model from a 2 MiB message, keeping only its head and tail", () => {
		const body = message("z".repeat(2 * 1024 * 1024));
		expect(body.length).toBeGreaterThan(2 * 1024 * 1024);
		for (const size of [1000, 64 * 1024, body.length]) expect(readJson(body, size)).toEqual({ inputTokens: 11, cacheReadInputTokens: 900, outputTokens: 3, model: "claude-opus-4-1", finished: true });
	});

	it("is not fooled by a usage nested in the content of a long message", () => {
		const nested = { type: "tool_use", id: "toolu_1", name: "report", input: { usage: { input_tokens: 999_999, output_tokens: 999_999 } } };
		const body = JSON.stringify({
			model: "m",
			content: [{ type: "text", text: "q".repeat(200_000) }, nested],
			usage: { input_tokens: 7, output_tokens: 8 },
		});
		expect(readJson(body)).toEqual({ inputTokens: 7, outputTokens: 8, model: "m", finished: true });
		// Its usage where the API puts it (last) but a nested one after it in another order: still the top-level one.
		const later = JSON.stringify({ model: "m", usage: { input_tokens: 7, output_tokens: 8 }, pad: "q".repeat(100_000), content: [nested] });
		expect(readJson(later).outputTokens).toBeUndefined();
	});

	it("finds the outermost usage in a tail that starts inside a string, and ignores escaped text", () => {
		expect(usageInTail('ing with \\"usage\\": {\\"input_tokens\\": 5} in it"}],"usage":{"input_tokens":4,"output_tokens":2}}')).toEqual({ input_tokens: 4, output_tokens: 2 });
		expect(usageInTail('"usage":{"input_tokens":4}},"more":1}')).toBeUndefined();
	});

	it("reports nothing for a body that is not a message", () => {
		expect(readJson("not json")).toEqual({ finished: false });
		expect(readJson(`${"x".repeat(100_000)}`)).toEqual({ finished: false });
	});
});
