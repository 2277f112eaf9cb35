import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { callGuardToSink, chunkedStream, readEnvelope, sinkRecord } from "./helpers";

const encoder = new TextEncoder();
const MESSAGES = [{ role: "user", content: "Write a long story." }];

function post(body: string | ReadableStream<Uint8Array>): RequestInit {
	return { method: "POST", headers: { "content-type": "application/json" }, body, ...(typeof body === "string" ? {} : { duplex: "half" }) };
}

function routesWith(name: string, fields: Record<string, unknown>): unknown {
	return (env.ROUTES as Record<string, unknown>[]).map((route) => (route.name === name ? { ...route, ...fields } : route));
}

describe("the 10-minute rule for non-streaming Messages requests", () => {
	it("answers 400 advising streaming or batches when max_tokens predicts more than 10 minutes", async () => {
		const response = await callGuardToSink("/v1/messages", post(JSON.stringify({ model: "m", max_tokens: 64_000, messages: MESSAGES })));
		expect(response.status).toBe(400);
		const body = await readEnvelope(response);
		expect(body.error.type).toBe("invalid_request_error");
		expect(body.error.message).toBe(
			"max_tokens of 64000 makes this non-streaming request expected to take up to 30 minutes, over the 10-minute limit for requests that do not stream. " +
				'Set "stream": true, or send it through the Message Batches API (POST /v1/messages/batches).',
		);
		expect(response.headers.get("x-should-retry")).toBe("false");
		// The origin never received the request whole.
		const record = await sinkRecord(body.request_id).catch(() => undefined);
		expect(record?.outcome ?? "never arrived").not.toBe("complete");
	});

	it("admits max_tokens 21,333 (just under 10 minutes) and refuses 21,334", async () => {
		const within = await callGuardToSink("/v1/messages", post(JSON.stringify({ model: "m", max_tokens: 21_333, messages: MESSAGES })));
		expect(within.status).toBe(200);
		const over = await callGuardToSink("/v1/messages", post(JSON.stringify({ model: "m", max_tokens: 21_334, messages: MESSAGES })));
		expect(over.status).toBe(400);
	});

	it("admits the same request when it streams", async () => {
		const response = await callGuardToSink("/v1/messages", post(JSON.stringify({ model: "m", max_tokens: 64_000, stream: true, messages: MESSAGES })));
		expect(response.status).toBe(200);
		expect((await sinkRecord(response.headers.get("request-id") ?? "")).outcome).toBe("complete");
	});

	it("reads the top-level fields as JSON.parse does: escaped keys count, nested ones and a later duplicate do not fool it", async () => {
		const escaped = await callGuardToSink("/v1/messages", post('{"model":"m","max\\u005ftokens":64000,"messages":[]}'));
		expect(escaped.status).toBe(400);
		const nested = await callGuardToSink("/v1/messages", post('{"model":"m","max_tokens":100,"metadata":{"max_tokens":64000},"messages":[]}'));
		expect(nested.status).toBe(200);
		const duplicate = await callGuardToSink("/v1/messages", post('{"max_tokens":100,"stream":true,"stream":false,"max_tokens":64000}'));
		expect(duplicate.status).toBe(400);
	});

	it("finds max_tokens after a 30 MB messages array in a chunked body, and the origin never gets the body whole", async () => {
		const filler = "x".repeat(1024 * 1024);
		const parts = ['{"model":"m","messages":['];
		for (let i = 0; i < 30; i++) parts.push(`${i ? "," : ""}{"role":"user","content":"${filler}"}`);
		parts.push('],"max_tokens":50000}');
		const bytes = encoder.encode(parts.join(""));
		const response = await callGuardToSink("/v1/messages", post(chunkedStream(bytes, 256 * 1024)));
		expect(response.status).toBe(400);
		const body = await readEnvelope(response);
		expect(body.error.message).toContain("max_tokens of 50000");
		const record = await sinkRecord(body.request_id);
		expect(record.outcome).toBe("failed");
		expect(record.bytes).toBeLessThan(bytes.byteLength);
	});

	it("leaves a body that is not a JSON object to the origin", async () => {
		const response = await callGuardToSink("/v1/messages", post('{"max_tokens": 64000, oops'));
		expect(response.status).toBe(200);
		expect((await sinkRecord(response.headers.get("request-id") ?? "")).outcome).toBe("complete");
	});

	it("is off for a route with refuse_long_non_streaming = false", async () => {
		const ROUTES = routesWith("messages.create", { refuse_long_non_streaming: false });
		const response = await callGuardToSink("/v1/messages", post(JSON.stringify({ model: "m", max_tokens: 64_000, messages: MESSAGES })), { ROUTES });
		expect(response.status).toBe(200);
	});
});
