import Anthropic, { APIError } from "@anthropic-ai/sdk";
import { resolve } from "node:path";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalServer, startLocalServer } from "./local-server";

const REQUEST_ID = /^req_[0-9A-Za-z]{24}$/;
const MESSAGE = { model: "claude-demo", max_tokens: 64, messages: [{ role: "user" as const, content: "Hello, guard" }] };
let server: LocalServer;
let client: Anthropic;

/** wrangler.toml's route table with short bounds on message creation, for the test. */
function shortBounds(): string {
	const { workerOptions } = unstable_getMiniflareWorkerOptions(resolve(__dirname, "../../wrangler.toml"));
	const routes = (workerOptions.bindings?.ROUTES ?? []) as Record<string, unknown>[];
	const changed = routes.map((route) =>
		route.name === "messages.create"
			? { ...route, response_timeout_seconds: 0.5, ping_interval_seconds: 0.1, refuse_long_non_streaming: true }
			: route,
	);
	return `ROUTES=${JSON.stringify(changed)}`;
}

beforeAll(async () => {
	server = await startLocalServer(["--var", shortBounds()]);
	client = new Anthropic({ apiKey: "sk-demo-key", baseURL: server.url, maxRetries: 0 });
});

afterAll(async () => {
	await server?.stop();
});

describe("honest streams through npm start's server, seen by the official SDK", () => {
	it("raises the error event when the origin breaks the stream after the 200", async () => {
		const stream = await client.messages.create({ ...MESSAGE, stream: true }, { headers: { "x-demo-fault": "stream-abort" } });
		const seen: string[] = [];
		const failure = await (async () => {
			for await (const event of stream) seen.push(event.type);
		})().catch((error: unknown) => error);
		expect(seen[0]).toBe("message_start");
		expect(failure).toBeInstanceOf(APIError);
		const error = failure as APIError;
		expect(error.type).toBe("api_error");
		expect(error.requestID).toMatch(REQUEST_ID);
		expect((error.error as { request_id: string }).request_id).toBe(error.requestID);
	});

	it("receives keep-alive pings while the origin is silent, and the stream completes", async () => {
		const request = client.messages.create(
			{ ...MESSAGE, stream: true },
			{ headers: { "x-demo-fault": "slow-stream", "x-demo-fault-delay-ms": "600" } },
		);
		const raw = await request.asResponse();
		const text = await raw.text();
		expect(text).toContain('event: ping\ndata: {"type": "ping"}\n\n');
		expect(text.trimEnd().split("\n\n").at(-1)).toMatch(/^event: message_stop\n/);

		const types: string[] = [];
		const stream = await client.messages.create(
			{ ...MESSAGE, stream: true },
			{ headers: { "x-demo-fault": "slow-stream", "x-demo-fault-delay-ms": "600" } },
		);
		for await (const event of stream) types.push(event.type);
		expect(types.at(-1)).toBe("message_stop");
	});

	it("gets timeout_error when the origin hangs past the route's response-time bound", async () => {
		const failure = await client.messages.create(MESSAGE, { headers: { "x-demo-fault": "hang" } }).catch((error: unknown) => error);
		expect(failure).toBeInstanceOf(APIError);
		const error = failure as APIError;
		expect(error.status).toBe(504);
		expect(error.type).toBe("timeout_error");
		expect(error.requestID).toMatch(REQUEST_ID);
	});

	it("refuses a non-streaming request expected to take over 10 minutes, which the SDK itself would not send", async () => {
		const response = await fetch(`${server.url}/v1/messages`, {
			method: "POST",
			headers: { "x-api-key": "sk-demo-key", "anthropic-version": "2023-06-01", "content-type": "application/json" },
			body: JSON.stringify({ ...MESSAGE, max_tokens: 64_000 }),
		});
		expect(response.status).toBe(400);
		const body = (await response.json()) as { error: { type: string; message: string } };
		expect(body.error.type).toBe("invalid_request_error");
		expect(body.error.message).toContain('"stream": true');
	});
});
