import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { callGuard, callGuardToSink, readEnvelope, sinkRecord, startGuard } from "./helpers";

const MESSAGE = { model: "claude-sonnet-4-5", max_tokens: 64, messages: [{ role: "user", content: "Hello" }] };

/** The route table of wrangler.toml with one route's fields changed. */
function routesWith(name: string, fields: Record<string, unknown>): unknown {
	return (env.ROUTES as Record<string, unknown>[]).map((route) => (route.name === name ? { ...route, ...fields } : route));
}

/** The frames of an SSE text, each without its terminating blank line. */
function frames(text: string): string[] {
	expect(text.endsWith("\n\n")).toBe(true);
	return text.slice(0, -2).split("\n\n");
}

function errorFrame(frame: string | undefined): { type: string; error: { type: string; message: string }; request_id: string } {
	const lines = (frame ?? "").split("\n");
	expect(lines[0]).toBe("event: error");
	return JSON.parse((lines[1] ?? "").replace(/^data: /, ""));
}

function postMessage(body: unknown, headers: Record<string, string> = {}): RequestInit {
	return { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) };
}

describe("mid-stream failure", () => {
	it("ends a stream the origin breaks after the 200 with an error event carrying the request ID", async () => {
		const response = await callGuard("/v1/messages", postMessage({ ...MESSAGE, stream: true }, { "x-demo-fault": "stream-abort" }));
		expect(response.status).toBe(200);
		const all = frames(await response.text());
		const last = errorFrame(all.at(-1));
		expect(last).toEqual({
			type: "error",
			error: { type: "api_error", message: "The upstream service broke off the stream. Please retry." },
			request_id: response.headers.get("request-id"),
		});
		// Every frame before it is one of the origin's whole events.
		for (const frame of all.slice(0, -1)) expect(frame).toMatch(/^event: (message_start|content_block_start|content_block_delta|ping)\ndata: \{.*\}$/);
		expect(all.filter((frame) => frame.startsWith("event: error"))).toHaveLength(1);
	});

	it("passes a stream that ends normally through byte-identical", async () => {
		const body = 'event: message_start\ndata: {"type":"message_start"}\r\n\r\n: comment\n\nevent: message_stop\rdata: {"type":"message_stop"}\r\r';
		const response = await callGuardToSink(
			"/v1/messages",
			postMessage({ ...MESSAGE, stream: true }, { "x-sink-status": "200", "x-sink-content-type": "text/event-stream", "x-sink-body-base64": btoa(body) }),
		);
		expect(response.status).toBe(200);
		expect(await response.text()).toBe(body);
	});

	it("ends with an error event when the origin's stream stops in the middle of an event", async () => {
		const body = 'event: message_start\ndata: {"type":"message_start"}\n\nevent: content_block_delta\ndata: {"type":"con';
		const response = await callGuardToSink(
			"/v1/messages",
			postMessage({ ...MESSAGE, stream: true }, { "x-sink-status": "200", "x-sink-content-type": "text/event-stream", "x-sink-body-base64": btoa(body) }),
		);
		const all = frames(await response.text());
		expect(all).toHaveLength(2);
		expect(all[0]).toBe('event: message_start\ndata: {"type":"message_start"}');
		expect(errorFrame(all[1]).error.message).toContain("in the middle of an event");
	});
});

/** The guard's answer as a client reads it, event by event (callGuard would take the body first). */
async function openStream(path: string, init: RequestInit, overrides: Record<string, unknown>): Promise<Response> {
	return (await startGuard(path, init, overrides)).response;
}

describe("keep-alive pings", () => {
	it("sends pings between events while the origin is silent, and the stream still ends normally", async () => {
		const ROUTES = routesWith("messages.create", { ping_interval_seconds: 0.05 });
		const response = await openStream(
			"/v1/messages",
			postMessage({ ...MESSAGE, stream: true }, { "x-demo-fault": "slow-stream", "x-demo-fault-delay-ms": "400" }),
			{ ROUTES },
		);
		const all = frames(await response.text());
		const pings = all.filter((frame) => frame === 'event: ping\ndata: {"type": "ping"}');
		expect(pings.length).toBeGreaterThanOrEqual(2);
		expect(all.at(-1)).toMatch(/^event: message_stop\n/);
		expect(all.some((frame) => frame.startsWith("event: error"))).toBe(false);
		// The pause is before the second event: the pings come after the first, never inside one.
		expect(all[0]).toMatch(/^event: message_start\n/);
		for (const frame of all) expect(frame).toMatch(/^event: [a-z_]+\ndata: \{.*\}$/);
	});
});

describe("origin time bounds", () => {
	it("ends a stream whose origin is silent past stream_idle_timeout_seconds with an error event", async () => {
		const ROUTES = routesWith("messages.create", { stream_idle_timeout_seconds: 0.2, ping_interval_seconds: 0.05 });
		const response = await openStream(
			"/v1/messages",
			postMessage({ ...MESSAGE, stream: true }, { "x-demo-fault": "slow-stream", "x-demo-fault-delay-ms": "10000" }),
			{ ROUTES },
		);
		const all = frames(await response.text());
		const last = errorFrame(all.at(-1));
		expect(last.error).toEqual({
			type: "api_error",
			message: "The upstream service sent nothing for 0.2 seconds; the stream was ended. Please retry.",
		});
		expect(last.request_id).toBe(response.headers.get("request-id"));
	});

	it("answers 504 timeout_error when the origin sends no headers within response_timeout_seconds", async () => {
		const ROUTES = routesWith("messages.create", { response_timeout_seconds: 0.2 });
		const response = await callGuard("/v1/messages", postMessage(MESSAGE, { "x-demo-fault": "hang" }), { ROUTES });
		expect(response.status).toBe(504);
		const body = await readEnvelope(response);
		expect(body.error).toEqual({ type: "timeout_error", message: "The upstream service did not answer within 0.2 seconds." });
		expect(body.request_id).toBe(response.headers.get("request-id"));
		expect(response.headers.get("x-should-retry")).toBe("true");
	});
});

describe("client disconnects", () => {
	it("cancels the origin's request at once when the client cancels a stream", async () => {
		const { response } = await startGuard(
			new Request("https://guard.test/v1/messages", postMessage({ ...MESSAGE, stream: true }, { "x-sink-stream": "endless" })),
			undefined,
			{ ORIGIN: env.SINK },
		);
		const reader = (response.body as ReadableStream<Uint8Array>).getReader();
		const first = await reader.read();
		expect(new TextDecoder().decode(first.value)).toContain("event: tick");
		await reader.cancel();
		const record = await sinkRecord(`${response.headers.get("request-id")}?until=aborted`);
		expect(record.aborted).toBe(true);
	});

	it("cancels the origin's request when a client disconnects before the origin answers", async () => {
		const tag = `disconnect-${crypto.randomUUID()}`;
		const abort = new AbortController();
		// workerd aborts request.signal when the client disconnects (the enable_request_signal flag).
		const request = new Request("https://guard.test/v1/models", { headers: { "x-sink-hang": "1", "x-sink-tag": tag }, signal: abort.signal });
		const sent = startGuard(request, undefined, { ORIGIN: env.SINK }).catch((error: unknown) => error);
		await env.SINK.fetch(`https://sink.test/__sink/requests/${tag}?until=arrived`);
		abort.abort();
		await sent;
		expect((await sinkRecord(`${tag}?until=aborted`)).aborted).toBe(true);
	});
});
