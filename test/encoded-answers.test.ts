import { afterEach, describe, expect, it, vi } from "vitest";
import type { RequestLogLine } from "../src/log/request-log";
import { callGuardToSink } from "./helpers";

/**
 * Issue 20 item 4: an origin's `Content-Encoding` answer reaches the client correctly decoded, and
 * its usage is charged. The sink is a real service binding, so the runtime's `fetch` does to its
 * answers what it does to any origin's: it decodes `gzip` and `br` as the body is read (keeping the
 * origin's `Content-Encoding` and `Content-Length`) and leaves `deflate` as sent.
 */

const MESSAGE = { type: "message", id: "msg_1", model: "claude-sonnet-4-6", content: [{ type: "text", text: "Hello there" }], usage: { input_tokens: 11, output_tokens: 7 } };
const SMALL = JSON.stringify(MESSAGE);
const LARGE = JSON.stringify({ pad: "lorem ipsum dolor ".repeat(6000), ...MESSAGE });
const SSE = `${[
	`event: message_start\ndata: ${JSON.stringify({ type: "message_start", message: { id: "msg_1", type: "message", model: "claude-sonnet-4-6", content: [], usage: { input_tokens: 11, output_tokens: 1 } } })}`,
	`event: content_block_delta\ndata: ${JSON.stringify({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Hello there" } })}`,
	`event: message_delta\ndata: ${JSON.stringify({ type: "message_delta", delta: { stop_reason: "end_turn" }, usage: { output_tokens: 7 } })}`,
	'event: message_stop\ndata: {"type":"message_stop"}',
].join("\n\n")}\n\n`;
/** SMALL, LARGE and SSE as `brotliCompressSync` makes them (workerd has no brotli encoder to make them here). */
const BROTLI = {
	small: "G5kACIzDdKM9X5RyjCYZRNtM/bIfHkRbEBFREWFo+C3JUoel79O1KpRMsWlINjPTKOmhhOsNa4fyKrkWBcdFL/0TBEusjrZZVIj8C9pTvz7Ezt7jFS+BIBUSDXOcrOE1ow2Ps2OGwaWglCvZfFCN82jEfw==",
	large:
		"W4KmAcI4TDfa8wGlHKM05X+bS5V7eSahLnSY6mdmqcPSp5PTQLE8aiu4hS3AQDz1CCjQjXGQg1ketIT5QOwMeCHTAjDQUo6sles+soIGWlgIBMblDvSXpKwtnGsdm66RinLoVT6ke1GqK01TuamO6iG8Jl3wdxGLLm0aEJTDQIyTeR8q2I+cedFOct/ijfpyWsE0A+1bCv8f",
	sse: "G9oBABwHdnPOiyR5zBpXicHzcc6/4ONVk0YF7ZY6LH0BMnjOdCAc/aC3nSs8Sy96g2vdAkVS3viZKe4grBXFVA6XMh5GH7K8AcCmWAEfY9M/3X1u0pSAoPQX1Ev5Nq1679vWPqqjeoTfG+JU4V0TsVb5+fK7ANOMvd3i/1+EOVlH5XtX+X3s5N8HCwgZIxgKUdMcKBKDwkAA3v2QDRQM2roNyN0GLMkV3c9+5OYpgnZrcic9WIjObe/5eaErB1V1/87xFwE=",
} as const;
/** Incompressible characters in front of a JSON answer, so its encoded form is past the 64 KiB read whole. */
const PAD = 100_000;

const REQUEST = JSON.stringify({ model: "claude-sonnet-4-6", max_tokens: 16, messages: [{ role: "user", content: "Hello" }] });

type Size = "small" | "large";
type Framing = "stated" | "chunked";

/** A request whose answer the sink compresses itself (gzip, deflate). */
function compressedBy(format: "gzip" | "deflate", framing: Framing, body: string, extra: Record<string, string> = {}): RequestInit {
	const headers: Record<string, string> = { "content-type": "application/json", "x-sink-status": "200", "x-sink-compress": format, "x-sink-content-type": "application/json", "x-sink-body-base64": btoa(body), ...extra };
	if (framing === "chunked") headers["x-sink-chunked"] = "1";
	return { method: "POST", headers, body: REQUEST };
}

/** A request whose answer is precompressed brotli, as an origin with a brotli encoder sends it. */
function brotli(base64: string, framing: Framing, contentType = "application/json"): RequestInit {
	const length = atob(base64).length;
	const sent: Record<string, string> = { "content-encoding": "br" };
	if (framing === "stated") sent["content-length"] = String(length);
	return {
		method: "POST",
		headers: { "content-type": "application/json", "x-sink-status": "200", "x-sink-content-type": contentType, "x-sink-body-base64": base64, "x-sink-encode-body": "manual", "x-sink-headers": JSON.stringify(sent) },
		body: REQUEST,
	};
}

function logLines(): RequestLogLine[] {
	const lines: RequestLogLine[] = [];
	vi.spyOn(console, "log").mockImplementation((line: unknown) => void lines.push(line as RequestLogLine));
	return lines;
}

/** The answer the client got, decoded as a client that honours `Content-Encoding` would. */
async function clientText(response: Response): Promise<string> {
	const coding = response.headers.get("content-encoding");
	const body = response.body;
	if (body === null) return "";
	if (coding === null) return response.text();
	if (coding !== "gzip" && coding !== "deflate") throw new Error(`the client cannot decode ${coding}`);
	return new Response(body.pipeThrough(new DecompressionStream(coding))).text();
}

async function expectAnswered(init: RequestInit, expected: string): Promise<void> {
	const lines = logLines();
	const response = await callGuardToSink("/v1/messages", init);
	const text = await clientText(response);
	expect(response.status, text.slice(0, 300)).toBe(200);
	expect(text).toBe(expected);
	// A stated length, if any, is the length of what the client gets.
	const length = response.headers.get("content-length");
	if (length !== null && response.headers.get("content-encoding") === null) expect(Number(length)).toBe(new TextEncoder().encode(expected).byteLength);
	const line = lines.find((entry) => entry.request_id === response.headers.get("request-id"));
	expect(line?.decisions.usage).toMatchObject({ input_tokens: 11, output_tokens: 7, settled_as: "reported" });
}

describe("encoded answers (issue 20 item 4)", () => {
	afterEach(() => {
		vi.restoreAllMocks();
	});

	for (const format of ["gzip", "deflate"] as const) {
		for (const framing of ["stated", "chunked"] as const) {
			for (const size of ["small", "large"] as Size[]) {
				it(`passes a ${size} ${format} JSON answer of ${framing === "stated" ? "stated length" : "no stated length"} decoded, and charges its usage`, async () => {
					if (size === "small") return expectAnswered(compressedBy(format, framing, SMALL), SMALL);
					// The padded answer: the same message behind `PAD` characters the sink made.
					const lines = logLines();
					const response = await callGuardToSink("/v1/messages", compressedBy(format, framing, SMALL, { "x-sink-pad": String(PAD) }));
					const text = await clientText(response);
					expect(response.status, text.slice(0, 300)).toBe(200);
					const { pad, ...message } = JSON.parse(text) as { pad: string };
					expect(pad).toHaveLength(PAD);
					expect(message).toEqual(MESSAGE);
					const line = lines.find((entry) => entry.request_id === response.headers.get("request-id"));
					expect(line?.decisions.usage).toMatchObject({ input_tokens: 11, output_tokens: 7, settled_as: "reported" });
				});
			}
			it(`passes a ${format} event stream of ${framing === "stated" ? "stated length" : "no stated length"} decoded, whole events, and charges its usage`, async () => {
				await expectAnswered(compressedBy(format, framing, SSE, { "x-sink-content-type": "text/event-stream" }), SSE);
			});
		}
	}

	for (const framing of ["stated", "chunked"] as const) {
		for (const size of ["small", "large"] as Size[]) {
			it(`passes a ${size} br JSON answer of ${framing === "stated" ? "stated length" : "no stated length"} decoded, and charges its usage`, async () => {
				await expectAnswered(brotli(BROTLI[size], framing), size === "small" ? SMALL : LARGE);
			});
		}
		it(`passes a br event stream of ${framing === "stated" ? "stated length" : "no stated length"} decoded, and charges its usage`, async () => {
			await expectAnswered(brotli(BROTLI.sse, framing, "text/event-stream"), SSE);
		});
	}

	it("passes an answer in a coding the guard cannot read (zstd) as the origin sent it, byte for byte, with its length", async () => {
		const bytes = new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3, 4, 5]);
		const response = await callGuardToSink("/v1/messages", {
			method: "POST",
			headers: {
				"content-type": "application/json",
				"x-sink-status": "200",
				"x-sink-content-type": "application/json",
				"x-sink-body-base64": btoa(String.fromCharCode(...bytes)),
				"x-sink-encode-body": "manual",
				"x-sink-headers": JSON.stringify({ "content-encoding": "zstd", "content-length": String(bytes.byteLength) }),
			},
			body: REQUEST,
		});
		expect(response.status).toBe(200);
		expect(response.headers.get("content-encoding")).toBe("zstd");
		expect(new Uint8Array(await response.arrayBuffer())).toEqual(bytes);
	});

	it("reads an encoded origin error's envelope", async () => {
		const envelope = JSON.stringify({ type: "error", error: { type: "invalid_request_error", message: "max_tokens: too large" } });
		const response = await callGuardToSink("/v1/messages", compressedBy("gzip", "stated", envelope, { "x-sink-status": "400" }));
		expect(response.status).toBe(400);
		const body = (await response.json()) as { error: { type: string; message: string } };
		expect(body.error).toEqual({ type: "invalid_request_error", message: "max_tokens: too large" });
	});
});
