import Anthropic, { OverloadedError } from "@anthropic-ai/sdk";
import { resolve } from "node:path";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { within } from "./hostile-kit";
import { type LocalServer, startLocalServer } from "./local-server";

const REQUEST_ID = /^req_[0-9A-Za-z]{24}$/;
let server: LocalServer;

/** wrangler.toml's routes, with GET /v1/models waiting at most 3 s for the origin. */
function modelsTimeout(): string {
	const { workerOptions } = unstable_getMiniflareWorkerOptions(resolve(__dirname, "../../wrangler.toml"));
	const routes = (workerOptions.bindings?.ROUTES ?? []) as Record<string, unknown>[];
	return `ROUTES=${JSON.stringify(routes.map((route) => (route.name === "models.list" ? { ...route, response_timeout_seconds: 3 } : route)))}`;
}

beforeAll(async () => {
	// One request in flight fills the guard, so a hanging one makes the next one shed.
	server = await startLocalServer(["--var", 'OVERLOAD={"max_in_flight":1,"org_share":1,"retry_after_seconds":1}', "--var", modelsTimeout()]);
});

afterAll(async () => {
	await server?.stop();
});

/** Polls GET /v1/models until it is served 200 (the one slot is free), for at most `ms`. */
async function servedWithin(ms: number, headers: Record<string, string>): Promise<void> {
	const deadline = Date.now() + ms;
	for (;;) {
		const response = await fetch(`${server.url}/v1/models`, { headers });
		await response.arrayBuffer();
		if (response.status === 200) return;
		if (Date.now() > deadline) throw new Error(`GET /v1/models still answered ${response.status} after ${ms} ms`);
		await new Promise((done) => setTimeout(done, 100));
	}
}

describe("overload through npm start's server, seen by the official SDK", () => {
	it("raises OverloadedError with a req_ request ID, after obeying retry-after once", async () => {
		const hold = new AbortController();
		const hanging = fetch(`${server.url}/v1/models`, {
			headers: { "x-api-key": "sk-demo-key", "anthropic-version": "2023-06-01", "x-demo-fault": "hang" },
			signal: hold.signal,
		}).catch(() => undefined);
		// The demo origin's hang fault never answers: poll until the guard sheds, each try a request.
		for (;;) {
			const probe = await fetch(`${server.url}/v1/models`, { headers: { "x-api-key": "sk-demo-key", "anthropic-version": "2023-06-01" } });
			await probe.arrayBuffer();
			if (probe.status === 529) break;
		}

		const client = new Anthropic({ apiKey: "sk-demo-key", baseURL: server.url, maxRetries: 1 });
		const started = performance.now();
		const failure = await client.models.list().catch((error: unknown) => error);
		const elapsed = performance.now() - started;
		hold.abort();
		await hanging;
		expect(failure).toBeInstanceOf(OverloadedError);
		const error = failure as OverloadedError;
		expect(error.status).toBe(529);
		expect(error.type).toBe("overloaded_error");
		expect(error.requestID).toMatch(REQUEST_ID);
		expect(error.headers?.get("retry-after")).toBe("1");
		// One retry, after the 1 s the guard asked for (the SDK's own backoff would be shorter).
		expect(elapsed).toBeGreaterThanOrEqual(1000);
	});

	it("ends a request the origin hangs on at its route's 3 s response_timeout_seconds with 504, then serves the next", async () => {
		const headers = { "x-api-key": "sk-demo-key", "anthropic-version": "2023-06-01" };
		// The slot is free again (the previous test's hanging client left): a plain request is served.
		await servedWithin(10_000, headers);
		const started = performance.now();
		// Not aborted by the client: only the guard's bound can end it.
		const hanging = await within(
			fetch(`${server.url}/v1/models`, { headers: { ...headers, "x-demo-fault": "hang" } }).then(async (response) => ({ status: response.status, body: await response.text() })),
			20_000,
			"the guard ending the hanging request (response_timeout_seconds is 3)",
		);
		const elapsed = performance.now() - started;
		expect(hanging.status, hanging.body).toBe(504);
		const body = JSON.parse(hanging.body) as { error: { type: string; message: string } };
		expect(body.error).toEqual({ type: "timeout_error", message: "The upstream service did not answer within 3 seconds." });
		expect(elapsed).toBeGreaterThanOrEqual(3000);
		// The one slot is free at once: no retries to wait through.
		const client = new Anthropic({ apiKey: "sk-demo-key", baseURL: server.url, maxRetries: 0 });
		const models = await client.models.list();
		expect(models.data.length).toBeGreaterThan(0);
	});
});
