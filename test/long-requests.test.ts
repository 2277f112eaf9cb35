import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { RequestLogLine } from "../src/log/request-log";
import { callGuardToSink, chunkedStream, readEnvelope, sinkRecord, sinkRecordIfAny } from "./helpers";

const encoder = new TextEncoder();
const MESSAGES = [{ role: "user", content: "Write a long story." }];

function post(body: string | ReadableStream<Uint8Array>): RequestInit {
	return { method: "POST", headers: { "content-type": "application/json" }, body, ...(typeof body === "string" ? {} : { duplex: "half" }) };
}

afterEach(() => {
	vi.restoreAllMocks();
});

/** The `long_request` verdicts the guard logged while `run` ran. */
async function verdicts(run: () => Promise<unknown>): Promise<unknown[]> {
	const log = vi.spyOn(console, "log");
	log.mockClear();
	try {
		await run();
		return log.mock.calls
			.map(([line]) => line)
			.filter((line): line is RequestLogLine => typeof line?.request_id === "string")
			.map((line) => line.decisions.long_request);
	} finally {
		log.mockRestore();
	}
}

/** What the origin received of a request: how its upload ended ("never arrived" when it did not begin), and its bytes. */
async function originSaw(requestId: string): Promise<{ outcome: string; bytes: number }> {
	const record = await sinkRecordIfAny(requestId);
	return record === undefined ? { outcome: "never arrived", bytes: 0 } : { outcome: record.outcome, bytes: record.bytes };
}

function routesWith(name: string, fields: Record<string, unknown>): unknown {
	return (env.ROUTES as Record<string, unknown>[]).map((route) => (route.name === name ? { ...route, ...fields } : route));
}

/** The guard in front of the sink with the rule on for `POST /v1/messages`, whatever the route table's default. */
function withRule(path: string, init: RequestInit): Promise<Response> {
	return callGuardToSink(path, init, { ROUTES: routesWith("messages.create", { refuse_long_non_streaming: true }) });
}

describe("the 10-minute rule for non-streaming Messages requests", () => {
	it("answers 400 advising streaming or batches when max_tokens predicts more than 10 minutes", async () => {
		const response = await withRule("/v1/messages", post(JSON.stringify({ model: "m", max_tokens: 64_000, messages: MESSAGES })));
		expect(response.status).toBe(400);
		const body = await readEnvelope(response);
		expect(body.error.type).toBe("invalid_request_error");
		expect(body.error.message).toBe(
			"max_tokens of 64000 makes this non-streaming request expected to take up to 30 minutes, over the 10-minute limit for requests that do not stream. " +
				'Set "stream": true, or send it through the Message Batches API (POST /v1/messages/batches).',
		);
		expect(response.headers.get("x-should-retry")).toBe("false");
		// The origin never received the request whole.
		const record = await sinkRecordIfAny(body.request_id);
		expect(record?.outcome ?? "never arrived").not.toBe("complete");
	});

	it("admits max_tokens 21,333 (just under 10 minutes) and refuses 21,334", async () => {
		const within = await withRule("/v1/messages", post(JSON.stringify({ model: "m", max_tokens: 21_333, messages: MESSAGES })));
		expect(within.status).toBe(200);
		const over = await withRule("/v1/messages", post(JSON.stringify({ model: "m", max_tokens: 21_334, messages: MESSAGES })));
		expect(over.status).toBe(400);
	});

	it("admits the same request when it streams", async () => {
		const response = await withRule("/v1/messages", post(JSON.stringify({ model: "m", max_tokens: 64_000, stream: true, messages: MESSAGES })));
		expect(response.status).toBe(200);
		expect((await sinkRecord(response.headers.get("request-id") ?? "")).outcome).toBe("complete");
	});

	it("reads the top-level fields as JSON.parse does: escaped keys count, nested ones and a later duplicate do not fool it", async () => {
		const escaped = await withRule("/v1/messages", post('{"model":"m","max\\u005ftokens":64000,"messages":[]}'));
		expect(escaped.status).toBe(400);
		const nested = await withRule("/v1/messages", post('{"model":"m","max_tokens":100,"metadata":{"max_tokens":64000},"messages":[]}'));
		expect(nested.status).toBe(200);
		const duplicate = await withRule("/v1/messages", post('{"max_tokens":100,"stream":true,"stream":false,"max_tokens":64000}'));
		expect(duplicate.status).toBe(400);
	});

	it("finds max_tokens after a 30 MB messages array in a chunked body, and the origin never gets the body whole", async () => {
		const filler = "x".repeat(1024 * 1024);
		const parts = ['{"model":"m","messages":['];
		for (let i = 0; i < 30; i++) parts.push(`${i ? "," : ""}{"role":"user","content":"${filler}"}`);
		parts.push('],"max_tokens":50000}');
		const bytes = encoder.encode(parts.join(""));
		const response = await withRule("/v1/messages", post(chunkedStream(bytes, 256 * 1024)));
		expect(response.status).toBe(400);
		const body = await readEnvelope(response);
		expect(body.error.message).toContain("max_tokens of 50000");
		const record = await sinkRecord(body.request_id);
		expect(record.outcome).toBe("failed");
		expect(record.bytes).toBeLessThan(bytes.byteLength);
	});

	it("refuses max_tokens 64000 after a field nested 10,001 arrays deep, which once blinded it", async () => {
		const nest = `${"[".repeat(10_001)}${"]".repeat(10_001)}`;
		for (const text of [
			`{"model":"m","metadata":{"x":${nest}},"messages":[],"max_tokens":64000}`,
			`{"model":"m","max_tokens":64000,"x":${nest},"messages":[]}`,
		]) {
			let status = 0;
			let body: Awaited<ReturnType<typeof readEnvelope>> | undefined;
			const logged = await verdicts(async () => {
				const response = await withRule("/v1/messages", post(chunkedStream(encoder.encode(text), 4096)));
				status = response.status;
				body = await readEnvelope(response);
			});
			expect(status).toBe(400);
			expect(body?.error.message).toContain("max_tokens of 64000 makes this non-streaming request expected to take up to 30 minutes");
			expect(logged).toEqual([{ outcome: "refused", maxTokens: 64_000, expectedSeconds: 1800 }]);
			expect((await originSaw(body?.request_id ?? "")).outcome).not.toBe("complete");
		}
	});

	it("forwards a streaming request whose field nests 300,000 levels deep, whole", async () => {
		const levels = 300_000;
		const bytes = encoder.encode(`{"model":"m","max_tokens":64000,"stream":true,"metadata":{"x":${'{"y":['.repeat(levels)}${"]}".repeat(levels)}},"messages":[]}`);
		let status = 0;
		let requestId = "";
		const logged = await verdicts(async () => {
			const response = await withRule("/v1/messages", post(chunkedStream(bytes, 256 * 1024)));
			status = response.status;
			requestId = response.headers.get("request-id") ?? "";
			await response.arrayBuffer();
		});
		expect(status).toBe(200);
		expect(logged).toEqual([{ outcome: "streaming" }]);
		expect(await originSaw(requestId)).toEqual({ outcome: "complete", bytes: bytes.byteLength });
	});

	it("refuses a body that is not a readable JSON object with 400, saying where it went wrong, and the origin never gets it whole", async () => {
		const cases: [string | ReadableStream<Uint8Array>, string][] = [
			['{"max_tokens": 64000, oops', "its JSON is malformed at byte offset 22."],
			['[{"max_tokens":100}]', 'it must be a single JSON object, starting with "{", and the byte at offset 0 is not.'],
			['{"max_tokens":100} {"max_tokens":64000}', "more than whitespace follows the object, from byte offset 19."],
			[chunkedStream(encoder.encode('{"model":"m","max_tokens":100'), 8), "it ended after 29 bytes, before its object closed."],
			['{"max_tokens":100,"stream":tru}', "its JSON is malformed at byte offset 30."],
		];
		for (const [body, problem] of cases) {
			let status = 0;
			let envelope: Awaited<ReturnType<typeof readEnvelope>> | undefined;
			const logged = await verdicts(async () => {
				const response = await withRule("/v1/messages", post(body));
				status = response.status;
				envelope = await readEnvelope(response);
			});
			expect(status, problem).toBe(400);
			expect(envelope?.error.type).toBe("invalid_request_error");
			expect(envelope?.error.message).toBe(`The request body is not a readable JSON object: ${problem}`);
			expect(logged).toEqual([{ outcome: "unreadable" }]);
			expect((await originSaw(envelope?.request_id ?? "")).outcome, problem).not.toBe("complete");
		}
	});

	it("refuses a bad body on the slice where it goes bad, before the megabytes after it reach the origin", async () => {
		const filler = "x".repeat(4 * 1024 * 1024);
		const bytes = encoder.encode(`{"model":"m","messages":[oops,"${filler}"],"max_tokens":100}`);
		const response = await withRule("/v1/messages", post(chunkedStream(bytes, 64 * 1024)));
		expect(response.status).toBe(400);
		const envelope = await readEnvelope(response);
		expect(envelope.error.message).toBe("The request body is not a readable JSON object: its JSON is malformed at byte offset 25.");
		// The slice holding the bad byte is never forwarded: the origin gets none of the body.
		const seen = await originSaw(envelope.request_id);
		expect(["never arrived", "failed"]).toContain(seen.outcome);
		expect(seen.bytes).toBe(0);
	});

	it("is off for a route with refuse_long_non_streaming = false: long and unreadable bodies alike go to the origin", async () => {
		const ROUTES = routesWith("messages.create", { refuse_long_non_streaming: false });
		const response = await callGuardToSink("/v1/messages", post(JSON.stringify({ model: "m", max_tokens: 64_000, messages: MESSAGES })), { ROUTES });
		expect(response.status).toBe(200);
		const malformed = await callGuardToSink("/v1/messages", post('{"max_tokens": 64000, oops'), { ROUTES });
		expect(malformed.status).toBe(200);
		expect((await sinkRecord(malformed.headers.get("request-id") ?? "")).outcome).toBe("complete");
	});
});
