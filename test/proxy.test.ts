import { SERVICE_ORIGIN_BASE } from "../src/proxy/origin";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { SinkRecord } from "./fixtures/sink-origin";
import { callGuard, callGuardToSink, chunkedStream, patternBytes, readEnvelope, sha256Hex, startGuard } from "./helpers";

async function sent(response: Response): Promise<SinkRecord> {
	expect(response.status).toBe(200);
	return (await response.json()) as SinkRecord;
}

describe("request bodies reach the origin byte-identical", () => {
	it("forwards an empty body", async () => {
		const record = await sent(await callGuardToSink("/v1/messages", { method: "POST", body: "", headers: { "content-type": "application/json" } }));
		expect(record.bytes).toBe(0);
		expect(record.outcome).toBe("complete");
	});

	it("forwards a small JSON body", async () => {
		const body = JSON.stringify({ model: "m", max_tokens: 5, messages: [{ role: "user", content: "héllo" }] });
		const record = await sent(
			await callGuardToSink("/v1/messages", { method: "POST", body, headers: { "content-type": "application/json" } }),
		);
		expect(record.bytes).toBe(new TextEncoder().encode(body).byteLength);
		expect(record.sha256).toBe(await sha256Hex(new TextEncoder().encode(body)));
		expect(record.headers["content-type"]).toBe("application/json");
	});

	it("streams a multi-megabyte chunked body through unchanged", async () => {
		// Many times the guard's 4 MiB read slice, so reused slices would show in the hash.
		const bytes = patternBytes(40 * 1024 * 1024 + 123, 7);
		const record = await sent(
			await callGuardToSink("/v1/files", { method: "POST", body: chunkedStream(bytes, 300_007), duplex: "half" } as RequestInit),
		);
		expect(record.bytes).toBe(bytes.byteLength);
		expect(record.sha256).toBe(await sha256Hex(bytes));
		expect(record.outcome).toBe("complete");
	});
});

describe("request bodies to an origin given as a URL", () => {
	it("stream through the counting pump byte-identical too", async () => {
		const bytes = patternBytes(24 * 1024 * 1024 + 5, 11);
		const response = await callGuard(
			"/v1/files",
			{ method: "POST", body: chunkedStream(bytes, 250_001), duplex: "half" } as RequestInit,
			{ ORIGIN: undefined, ORIGIN_URL: "https://origin.test" },
		);
		const record = await sent(response);
		expect(record.url).toBe("https://origin.test/v1/files");
		expect([record.bytes, record.sha256]).toEqual([bytes.byteLength, await sha256Hex(bytes)]);
	});
});

describe("request headers", () => {
	it("forwards end-to-end headers and drops hop-by-hop ones and those named in Connection", async () => {
		const record = await sent(
			await callGuardToSink("/v1/models", {
				headers: {
					"anthropic-version": "2023-06-01",
					"x-custom": "kept",
					connection: "keep-alive, x-private-hop",
					"x-private-hop": "dropped",
					"keep-alive": "timeout=5",
					te: "trailers",
					"proxy-authorization": "Basic abc",
				},
			}),
		);
		expect(record.headers["anthropic-version"]).toBe("2023-06-01");
		expect(record.headers["x-custom"]).toBe("kept");
		for (const name of ["connection", "x-private-hop", "keep-alive", "te", "proxy-authorization"]) {
			expect(record.headers[name]).toBeUndefined();
		}
	});
});

describe("streamed responses", () => {
	it("deliver the first event to the client before the origin has finished", async () => {
		// The sink finishes its stream only once the request body ends, which the test controls.
		const upload = new TransformStream<Uint8Array, Uint8Array>();
		// Not callGuard: its wait for the whole exchange would wait on the upload this test holds.
		const { response } = await startGuard(
			"/v1/messages",
			{ method: "POST", body: upload.readable, headers: { "x-sink-stream": "hold" }, duplex: "half" } as RequestInit,
			{ ORIGIN: env.SINK },
		);
		expect(response.status).toBe(200);
		expect(response.headers.get("content-type")).toBe("text/event-stream");
		const reader = (response.body as ReadableStream<Uint8Array>).pipeThrough(new TextDecoderStream()).getReader();
		const first = await reader.read();
		expect(first.value).toContain("event: message_start");
		// The origin holds the rest until the upload ends: the first event could only have come early.
		await upload.writable.close();
		let rest = "";
		for (;;) {
			const { done, value } = await reader.read();
			if (done) break;
			rest += value;
		}
		expect(rest).toContain("event: message_stop");
	});
});

describe("origin errors become the envelope", () => {
	it("turns an HTML 502 page into 502 api_error with the guard's request ID", async () => {
		const response = await callGuardToSink("/v1/models", {
			headers: { "x-sink-status": "502", "x-sink-content-type": "text/html", "x-sink-body": "<html><h1>502 Bad Gateway</h1></html>" },
		});
		expect(response.status).toBe(502);
		const body = await readEnvelope(response);
		expect(body.error.type).toBe("api_error");
		expect(body.error.message).not.toContain("<html>");
		expect(body.request_id).toBe(response.headers.get("request-id"));
		expect(response.headers.get("x-should-retry")).toBe("true");
	});

	it("turns the demo origin's html-502 fault into the envelope", async () => {
		const response = await callGuard("/v1/models", { headers: { "x-demo-fault": "html-502" } });
		expect(response.status).toBe(502);
		expect((await readEnvelope(response)).error.type).toBe("api_error");
	});

	it.each([
		[400, "invalid_request_error", "false"],
		[404, "not_found_error", "false"],
		[409, "invalid_request_error", "false"],
		[503, "api_error", "true"],
		[529, "overloaded_error", "true"],
	])("types a plain-text %i by the SPEC table as %s", async (status, type, retry) => {
		const response = await callGuardToSink("/v1/models", { headers: { "x-sink-status": String(status), "x-sink-body": "nope" } });
		expect(response.status).toBe(status);
		expect((await readEnvelope(response)).error.type).toBe(type);
		expect(response.headers.get("x-should-retry")).toBe(retry);
	});

	it("passes an origin envelope's type and message through with the guard's request ID", async () => {
		const origin = { type: "error", error: { type: "rate_limit_error", message: "Slow down, org 42." }, request_id: "req_origin" };
		const response = await callGuardToSink("/v1/models", {
			headers: { "x-sink-status": "429", "x-sink-content-type": "application/json", "x-sink-body": JSON.stringify(origin) },
		});
		expect(response.status).toBe(429);
		const body = await readEnvelope(response);
		expect(body).toEqual({
			type: "error",
			error: { type: "rate_limit_error", message: "Slow down, org 42." },
			request_id: response.headers.get("request-id"),
		});
	});

	it("answers 500 api_error when the origin cannot be reached", async () => {
		const unreachable = { fetch: () => Promise.reject(new Error("connect ECONNREFUSED")) } as unknown as Fetcher;
		const response = await callGuard("/v1/models", {}, { ORIGIN: unreachable });
		expect(response.status).toBe(500);
		const body = await readEnvelope(response);
		expect(body.error.type).toBe("api_error");
		expect(body.error.message).not.toContain("ECONNREFUSED");
		expect(response.headers.get("x-should-retry")).toBe("true");
	});
});

describe("Message Batches results_url", () => {
	const batch = (host: string) => ({
		id: "msgbatch_1",
		type: "message_batch",
		results_url: `${host}/v1/messages/batches/msgbatch_1/results`,
	});

	it("points at the guard, not at the origin's host, with the origin's path prefix removed", async () => {
		const body = JSON.stringify(batch("https://origin.test/prefix"));
		const response = await callGuard(
			"https://guard.example.com/v1/messages/batches/msgbatch_1",
			{ headers: { "x-sink-status": "200", "x-sink-content-type": "application/json", "x-sink-body": body } },
			{ ORIGIN: undefined, ORIGIN_URL: "https://origin.test/prefix" },
		);
		expect(response.status).toBe(200);
		const rewritten = (await response.json()) as { results_url: string; id: string };
		expect(rewritten.results_url).toBe("https://guard.example.com/v1/messages/batches/msgbatch_1/results");
		expect(rewritten.id).toBe("msgbatch_1");
	});

	it("is rewritten inside a list page too", async () => {
		// Through the ORIGIN binding the origin is addressed at a fixed base, never the client's Host.
		const body = JSON.stringify({ data: [batch(SERVICE_ORIGIN_BASE), batch(SERVICE_ORIGIN_BASE)], has_more: false });
		const response = await callGuardToSink("https://guard.example.com/v1/messages/batches", {
			headers: { "x-sink-status": "200", "x-sink-content-type": "application/json", "x-sink-body": body },
		});
		const page = (await response.json()) as { data: { results_url: string }[] };
		expect(page.data.map((item) => item.results_url)).toEqual([
			"https://guard.example.com/v1/messages/batches/msgbatch_1/results",
			"https://guard.example.com/v1/messages/batches/msgbatch_1/results",
		]);
	});

	it("leaves a third party's URL, a scheme-relative one and javascript: exactly as the origin sent them", async () => {
		const values = ["https://third.example/v1/x", "//evil.example/x", "javascript:alert(1)", "https://origin.test.evil.example/v1/x"];
		const body = JSON.stringify({ data: values.map((results_url) => ({ id: "b", results_url })) });
		const response = await callGuard(
			"https://guard.example.com/v1/messages/batches",
			{ headers: { "x-sink-status": "200", "x-sink-content-type": "application/json", "x-sink-body": body } },
			{ ORIGIN: undefined, ORIGIN_URL: "https://origin.test" },
		);
		const page = (await response.json()) as { data: { results_url: string }[] };
		expect(page.data.map((item) => item.results_url)).toEqual(values);
	});

	it("points at PUBLIC_URL when one is configured, whatever Host the client sent", async () => {
		const response = await callGuard(
			"https://evil.example/v1/messages/batches/msgbatch_1",
			{ headers: { "x-sink-status": "200", "x-sink-content-type": "application/json", "x-sink-body": JSON.stringify(batch("https://origin.test")) } },
			{ ORIGIN: undefined, ORIGIN_URL: "https://origin.test", PUBLIC_URL: "https://api.example.com" },
		);
		const rewritten = (await response.json()) as { results_url: string };
		expect(rewritten.results_url).toBe("https://api.example.com/v1/messages/batches/msgbatch_1/results");
	});

	it("reaches the origin through the URL origin with path and query", async () => {
		const response = await callGuard("/v1/models?limit=2", {}, { ORIGIN: undefined, ORIGIN_URL: "https://origin.test/prefix" });
		const record = (await response.json()) as SinkRecord;
		expect(record.url).toBe("https://origin.test/prefix/v1/models?limit=2");
	});
});

describe("a small answer of stated length", () => {
	// An origin that states 100 bytes, sends 10, then nothing: the guard reads small answers whole
	// before answering, so it can still say what happened instead of sending a cut 200.
	const stalling = {
		fetch: async () => {
			const { readable, writable } = new FixedLengthStream(100);
			const writer = writable.getWriter();
			writer.write(new TextEncoder().encode('{"data":[1,')).catch(() => undefined);
			return new Response(readable, { headers: { "content-type": "application/json", "content-length": "100" } });
		},
	} as unknown as Fetcher;
	const routes = [{ methods: ["GET"], path: "/v1/models", max_body_bytes: 0, group: "models", stream_idle_timeout_seconds: 0.2 }];

	// A service binding does not hold an origin to its Content-Length: a body can run on past it.
	function overlong(type: "bytes" | undefined) {
		let sent = 0;
		const origin = {
			fetch: async () => {
				const chunk = new TextEncoder().encode('{"data":[1,2,3]}');
				const pull = (controller: { enqueue(chunk: Uint8Array): void; close(): void }) => {
					sent += chunk.byteLength;
					controller.enqueue(chunk.slice());
					if (sent > 1024 * 1024) controller.close();
				};
				const body = type === undefined ? new ReadableStream<Uint8Array>({ pull }) : new ReadableStream({ type, pull });
				return new Response(body, { headers: { "content-type": "application/json", "content-length": "10" } });
			},
		} as unknown as Fetcher;
		return { origin, sent: () => sent };
	}

	for (const [kind, type] of [
		["a byte stream", "bytes"],
		["a plain stream", undefined],
	] as const) {
		it(`answers 502 when ${kind} runs on past its content-length, having read a chunk past it`, async () => {
			const { origin, sent } = overlong(type);
			const response = await callGuard("/v1/models", {}, { ORIGIN: origin, ROUTES: routes });
			expect(response.status).toBe(502);
			const body = await readEnvelope(response);
			expect(body.error).toEqual({ type: "api_error", message: "The upstream service sent more than its content-length." });
			// 16 bytes a pull: it stopped reading within a few chunks of the stated 10, not at the megabyte.
			expect(sent()).toBeLessThanOrEqual(64);
		});
	}

	it("answers 504 timeout_error when it stalls before its end, not a cut 200", async () => {
		const response = await callGuard("/v1/models", {}, { ORIGIN: stalling, ROUTES: routes });
		expect(response.status).toBe(504);
		const body = await readEnvelope(response);
		expect(body.error).toEqual({ type: "timeout_error", message: "The upstream service stopped sending its answer for 0.2 seconds." });
	});
});
