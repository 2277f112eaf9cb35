import { describe, expect, it } from "vitest";
import { type ReportedUsage, usageTap } from "../src/lib/usage-tap";

async function through(kind: "json" | "sse", parts: string[]): Promise<{ out: string; usage: ReportedUsage | undefined; calls: number }> {
	let usage: ReportedUsage | undefined;
	let calls = 0;
	const source = new ReadableStream<Uint8Array>({
		start(controller) {
			for (const part of parts) controller.enqueue(new TextEncoder().encode(part));
			controller.close();
		},
	});
	const out = await new Response(
		source.pipeThrough(
			usageTap(kind, (seen) => {
				usage = { ...seen };
				calls++;
			}),
		),
	).text();
	return { out, usage, calls };
}

const SSE = [
	'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":25,"cache_read_input_tokens":5,"output_tokens":1}}}\n\n',
	'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"text":"a \\"usage\\" word"}}\n\n',
	'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":7}}\n\n',
	'event: message_delta\ndata: {"type":"message_delta","delta":{},"usage":{"output_tokens":42}}\n\n',
	'event: message_stop\ndata: {"type":"message_stop"}\n\n',
].join("");

describe("the usage tap", () => {
	it("reads input and the final output count from an SSE stream split anywhere, passing it through unchanged", async () => {
		for (const size of [1, 7, 64, SSE.length]) {
			const parts: string[] = [];
			for (let i = 0; i < SSE.length; i += size) parts.push(SSE.slice(i, i + size));
			const { out, usage, calls } = await through("sse", parts);
			expect(out).toBe(SSE);
			expect(usage).toEqual({ inputTokens: 30, outputTokens: 42 });
			expect(calls).toBe(1);
		}
	});

	it("reads usage from a JSON message", async () => {
		const body = JSON.stringify({ type: "message", content: [], usage: { input_tokens: 11, output_tokens: 3 } });
		const { out, usage } = await through("json", [body.slice(0, 10), body.slice(10)]);
		expect(out).toBe(body);
		expect(usage).toEqual({ inputTokens: 11, outputTokens: 3 });
	});

	it("reports nothing it did not see", async () => {
		expect((await through("json", ["not json"])).usage).toEqual({});
		expect((await through("sse", ["event: ping\ndata: {}\n\n"])).usage).toEqual({});
	});
});
