import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { RequestLogLine } from "../../src/log/request-log";
import { callGuard, readEnvelope, sha256Hex, sinkRecord } from "../helpers";

/** wrangler.toml's routes with `models.list` and `count_tokens` sent to the demo origin first, then the sink. */
function routesWithOrigins(extra: Record<string, unknown> = {}): unknown[] {
	const routes = env.ROUTES as Record<string, unknown>[];
	return routes.map((route) =>
		route.name === "models.list" || route.name === "messages.count_tokens"
			? { ...route, origins: [{ binding: "ORIGIN", priority: 1 }, { binding: "SINK", priority: 2 }], ...extra }
			: route,
	);
}

function logLines(): RequestLogLine[] {
	const lines: RequestLogLine[] = [];
	vi.spyOn(console, "log").mockImplementation((line: unknown) => {
		if (typeof line === "object" && line !== null && "request_id" in line) lines.push(line as RequestLogLine);
	});
	return lines;
}

afterEach(() => {
	vi.restoreAllMocks();
});

describe("a route with an origins list, through the whole pipeline", () => {
	it("answers from the second origin when the first answers 529, with the same request-id and x-guard-attempt 2, and logs both attempts", async () => {
		const lines = logLines();
		const response = await callGuard("/v1/models", { headers: { "x-demo-fault": "overloaded" } }, { ROUTES: routesWithOrigins() });
		expect(response.status).toBe(200);
		const requestId = response.headers.get("request-id") ?? "";
		const record = await sinkRecord(requestId);
		expect(record.headers["x-guard-attempt"]).toBe("2");
		expect(record.headers["request-id"]).toBe(requestId);
		const line = lines.find((entry) => entry.request_id === requestId);
		expect(line?.origin).toBe("service:SINK");
		expect(line?.decisions.attempts).toEqual([
			{ origin: "service:ORIGIN", outcome: "retryable-status", status: 529, ms: expect.any(Number) },
			{ origin: "service:SINK", outcome: "answered", status: 200, ms: expect.any(Number) },
		]);
	});

	it("drops a client's own x-guard-attempt in every spelling: only the guard numbers attempts", async () => {
		const forged = { "x-guard-attempt": "7", x_guard_attempt: "9" };
		const pooled = await callGuard("/v1/models", { headers: { "x-demo-fault": "overloaded", ...forged } }, { ROUTES: routesWithOrigins() });
		const pooledRecord = await sinkRecord(pooled.headers.get("request-id") ?? "");
		expect(pooledRecord.headers["x-guard-attempt"]).toBe("2");
		expect(pooledRecord.headers.x_guard_attempt).toBeUndefined();
		const single = await callGuard("/v1/models", { headers: forged }, { ORIGIN: env.SINK });
		const singleRecord = await sinkRecord(single.headers.get("request-id") ?? "");
		expect(singleRecord.headers["x-guard-attempt"]).toBeUndefined();
		expect(singleRecord.headers.x_guard_attempt).toBeUndefined();
	});

	it("sends a replayed body byte for byte to the second origin", async () => {
		const body = JSON.stringify({ model: "claude-test-1", messages: [{ role: "user", content: "x".repeat(5000) }] });
		const response = await callGuard(
			"/v1/messages/count_tokens",
			{ method: "POST", headers: { "x-demo-fault": "overloaded", "content-type": "application/json", "content-length": String(body.length) }, body },
			{ ROUTES: routesWithOrigins() },
		);
		expect(response.status, await response.clone().text()).toBe(200);
		const record = await sinkRecord(response.headers.get("request-id") ?? "");
		expect(record.bytes).toBe(body.length);
		expect(record.sha256).toBe(await sha256Hex(new TextEncoder().encode(body)));
	});

	it("does not retry a body over replay_max_bytes: the first origin's 529 is the answer, and the log says why", async () => {
		const lines = logLines();
		const body = JSON.stringify({ model: "claude-test-1", messages: [{ role: "user", content: "x".repeat(5000) }] });
		const response = await callGuard(
			"/v1/messages/count_tokens",
			{ method: "POST", headers: { "x-demo-fault": "overloaded", "content-type": "application/json", "content-length": String(body.length) }, body },
			{ ROUTES: routesWithOrigins({ replay_max_bytes: 1000 }) },
		);
		expect(response.status).toBe(529);
		const envelope = await readEnvelope(response);
		await expect(sinkRecord(envelope.request_id)).rejects.toThrow("no record");
		const line = lines.find((entry) => entry.request_id === envelope.request_id);
		expect(line?.decisions.attempts).toEqual([
			{ origin: "service:ORIGIN", outcome: "retryable-status", status: 529, ms: expect.any(Number), not_retried: "body-over-replay-max" },
		]);
	});

	it("does not retry a 502 the route does not list", async () => {
		const response = await callGuard("/v1/models", { headers: { "x-demo-fault": "html-502" } }, { ROUTES: routesWithOrigins() });
		expect(response.status).toBe(502);
		const envelope = await readEnvelope(response);
		await expect(sinkRecord(envelope.request_id)).rejects.toThrow("no record");
	});

	it("retries a 502 the route lists in retry_statuses", async () => {
		const response = await callGuard("/v1/models", { headers: { "x-demo-fault": "html-502" } }, { ROUTES: routesWithOrigins({ retry_statuses: [502] }) });
		expect(response.status).toBe(200);
		expect((await sinkRecord(response.headers.get("request-id") ?? "")).headers["x-guard-attempt"]).toBe("2");
	});

	it("moves on past an origin silent for connect_timeout_seconds", async () => {
		const response = await callGuard("/v1/models", { headers: { "x-demo-fault": "hang" } }, { ROUTES: routesWithOrigins({ connect_timeout_seconds: 0.2 }) });
		expect(response.status).toBe(200);
		expect((await sinkRecord(response.headers.get("request-id") ?? "")).headers["x-guard-attempt"]).toBe("2");
	});
});
