import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { RequestLogLine } from "../src/log/request-log";
import { guardEventStream, type StreamOutcome } from "../src/sse/event-stream-guard";
import { callGuardToSink, sinkRecord, startGuard } from "./helpers";

/**
 * Issue 20 item 1: an answer the client takes nothing of for `client_idle_timeout_seconds` is cut
 * off, its slot freed, its usage settled as for a client that left, and its log line says so. A
 * client here that never reads its response body is one whose socket never drains: the runtime
 * pulls nothing more from the guard's stream.
 */

const MESSAGE = { model: "claude-sonnet-4-6", max_tokens: 64, messages: [{ role: "user", content: "Hello" }] };

/** The route table of wrangler.toml with one route's fields changed. */
function routesWith(name: string, fields: Record<string, unknown>): unknown {
	return (env.ROUTES as Record<string, unknown>[]).map((route) => (route.name === name ? { ...route, ...fields } : route));
}

function post(body: unknown, headers: Record<string, string> = {}): RequestInit {
	return { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) };
}

function logLines(): RequestLogLine[] {
	const lines: RequestLogLine[] = [];
	vi.spyOn(console, "log").mockImplementation((line: unknown) => void lines.push(line as RequestLogLine));
	return lines;
}

/** An origin answering an endless JSON body (16 KiB a chunk, as fast as it is taken); `cancelled` says when the guard let it go. */
function endlessJson(): { origin: Fetcher; cancelled: Promise<unknown>; chunks: () => number } {
	let sent = 0;
	let resolveCancelled: (reason: unknown) => void = () => undefined;
	const cancelled = new Promise((resolve) => {
		resolveCancelled = resolve;
	});
	const chunk = new TextEncoder().encode(`${" ".repeat(16 * 1024 - 1)}\n`);
	const origin = {
		fetch: async (_input: RequestInfo | URL, init?: RequestInit) => {
			await new Response(init?.body ?? null).arrayBuffer();
			const body = new ReadableStream<Uint8Array>({
				start(controller) {
					controller.enqueue(new TextEncoder().encode('{"type":"message","content":['));
				},
				pull(controller) {
					sent++;
					controller.enqueue(chunk.slice());
				},
				cancel(reason) {
					resolveCancelled(reason);
				},
			});
			return new Response(body, { headers: { "content-type": "application/json" } });
		},
	} as unknown as Fetcher;
	return { origin, cancelled, chunks: () => sent };
}

describe("clients that do not read (issue 20 item 1)", () => {
	afterEach(() => {
		vi.restoreAllMocks();
	});

	it("cuts off an event stream the client takes nothing of, pings aside: the origin's request aborted, the slot freed, usage settled, one log line", async () => {
		const lines = logLines();
		const overrides = {
			ORIGIN: env.SINK,
			ROUTES: routesWith("messages.create", { client_idle_timeout_seconds: 0.3, ping_interval_seconds: 0.05 }),
			OVERLOAD: { max_in_flight: 1, org_share: 1 },
		};
		const started = Date.now();
		const { response, settled } = await startGuard("/v1/messages", post({ ...MESSAGE, stream: true }, { "x-sink-stream": "endless" }), overrides);
		expect(response.status).toBe(200);
		const id = response.headers.get("request-id");
		// While it holds the only slot, another request is shed.
		const shed = await callGuardToSink("/v1/models", {}, overrides);
		expect(shed.status).toBe(529);
		await shed.arrayBuffer();
		const record = await sinkRecord(`${id}?until=aborted`);
		expect(record.aborted).toBe(true);
		await settled();
		const elapsed = Date.now() - started;
		expect(elapsed).toBeGreaterThanOrEqual(300);
		expect(elapsed).toBeLessThan(3000);
		const line = lines.find((entry) => entry.request_id === id);
		expect(line?.decisions.response_body).toMatchObject({ outcome: "client-not-reading", idle_seconds: 0.3 });
		expect(line?.decisions.stream).toMatchObject({ outcome: "client-not-reading" });
		expect(line?.decisions.usage).toMatchObject({ settled_as: "delivered" });
		// The slot is free again.
		const next = await callGuardToSink("/v1/models", {}, overrides);
		expect(next.status).toBe(200);
		await next.arrayBuffer();
		// The client's body is an error, not a clean end.
		await expect(response.text()).rejects.toThrow();
	});

	it("cuts off a JSON answer the client takes nothing of: the origin's body cancelled, the slot freed, the claim settled", async () => {
		const lines = logLines();
		const { origin, cancelled, chunks } = endlessJson();
		const overrides = { ORIGIN: origin, ROUTES: routesWith("messages.create", { client_idle_timeout_seconds: 0.2 }), OVERLOAD: { max_in_flight: 1, org_share: 1 } };
		const { response, settled } = await startGuard("/v1/messages", post(MESSAGE), overrides);
		expect(response.status).toBe(200);
		await cancelled;
		await settled();
		// Bounded: what the client's buffers hold and one chunk more, not the endless body.
		expect(chunks()).toBeLessThan(20);
		const line = lines.find((entry) => entry.request_id === response.headers.get("request-id"));
		expect(line?.decisions.response_body).toMatchObject({ outcome: "client-not-reading", idle_seconds: 0.2 });
		// Cut before its usage, the answer is charged its claim, as for a client that left.
		expect(line?.decisions.usage).toMatchObject({ settled_as: "claim" });
		const next = await callGuardToSink("/v1/models", {}, { ...overrides, ORIGIN: env.SINK });
		expect(next.status).toBe(200);
		await next.arrayBuffer();
	});

	it("lets a slow client that keeps reading have the whole answer", async () => {
		const lines = logLines();
		const body = JSON.stringify({ type: "message", pad: "x".repeat(300_000), usage: { input_tokens: 5, output_tokens: 3 } });
		const overrides = { ROUTES: routesWith("messages.create", { client_idle_timeout_seconds: 0.3 }) };
		const { response, settled } = await startGuard(
			"/v1/messages",
			post(MESSAGE, { "x-sink-status": "200", "x-sink-content-type": "application/json", "x-sink-body-base64": btoa(body) }),
			{ ...overrides, ORIGIN: env.SINK },
		);
		const reader = (response.body as ReadableStream<Uint8Array>).getReader();
		let bytes = 0;
		let reads = 0;
		const started = Date.now();
		for (;;) {
			const { done, value } = await reader.read();
			if (done) break;
			bytes += value.byteLength;
			reads++;
			await scheduler.wait(20);
		}
		await settled();
		// Far longer than the bound in all, never that long between two reads.
		expect(Date.now() - started).toBeGreaterThan(600);
		expect(reads).toBeGreaterThan(30);
		expect(bytes).toBe(body.length);
		const line = lines.find((entry) => entry.request_id === response.headers.get("request-id"));
		expect(line?.decisions.response_body).toBeUndefined();
		expect(line?.decisions.usage).toMatchObject({ settled_as: "reported", output_tokens: 3 });
	});

	describe("the client's clock in an event stream", () => {
		const encoder = new TextEncoder();
		/** An origin's event stream the test writes, and a guard over it with a 150 ms client bound and 50 ms pings. */
		function guarded() {
			let origin: ReadableStreamDefaultController<Uint8Array> | undefined;
			let cancelledAt: number | undefined;
			const upstream = new ReadableStream<Uint8Array>({
				start(controller) {
					origin = controller;
				},
				cancel() {
					cancelledAt = Date.now();
				},
			});
			const ends: { outcome: StreamOutcome; at: number }[] = [];
			const stream = guardEventStream(upstream, {
				requestId: "req_test",
				pingAfterMs: 50,
				idleTimeoutMs: 0,
				clientIdleTimeoutMs: 150,
				maxFrameBytes: 1024,
				errorFor: () => ({ type: "api_error", message: "broken" }),
				onEnd: (outcome) => ends.push({ outcome, at: Date.now() }),
			});
			return { send: (event: string) => origin?.enqueue(encoder.encode(`event: ${event}\ndata: {}\n\n`)), close: () => origin?.close(), stream, ends, cancelledAt: () => cancelledAt };
		}

		it("lets a client that reads through an origin silence longer than the bound, pings and all, have the whole stream", async () => {
			const { send, close, stream, ends } = guarded();
			send("a");
			setTimeout(() => {
				send("b");
				close();
			}, 400);
			const text = await new Response(stream).text();
			expect(text.startsWith("event: a\n")).toBe(true);
			expect(text.endsWith("event: b\ndata: {}\n\n")).toBe(true);
			expect(ends[0]?.outcome.kind).toBe("complete");
			expect(ends[0]?.outcome.pings).toBeGreaterThanOrEqual(3);
		});

		it("does not let pings start or restart the clock: an event the client leaves waiting is cut off one bound after it was sent", async () => {
			const { send, stream, ends, cancelledAt } = guarded();
			const reader = stream.getReader();
			send("a");
			expect(new TextDecoder().decode((await reader.read()).value)).toContain("event: a");
			// The client stops reading. The origin is silent past the bound: one ping joins the queue, the rest are skipped.
			await scheduler.wait(300);
			expect(ends).toEqual([]);
			const sentAt = Date.now();
			send("b");
			await scheduler.wait(600);
			expect(ends[0]?.outcome.kind).toBe("client-not-reading");
			const cutAfter = (ends[0]?.at ?? 0) - sentAt;
			expect(cutAfter).toBeGreaterThanOrEqual(140);
			expect(cutAfter).toBeLessThan(450);
			expect(cancelledAt()).toBeDefined();
			// What the client had taken stays taken; its body then errors rather than ending cleanly.
			await expect(
				(async () => {
					for (;;) if ((await reader.read()).done) return;
				})(),
			).rejects.toThrow();
		});
	});
});

