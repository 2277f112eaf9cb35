import { usageTally } from "../src/limits/console/usage-tally";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { callGuardToSink, readEnvelope, sinkRecord, startGuard, configProblem, MISCONFIGURED } from "./helpers";
import { seedKey, TEST_KEY } from "./keys";

const decoder = new TextDecoder();
const OTHER_ORG_KEY = "sk-guard-OtherOrganisationKey00000000000000000";

/** Starts a request the sink keeps in flight (an endless event stream), and reads its first event. */
async function inFlight(overrides: Record<string, unknown>, key = TEST_KEY) {
	const { response } = await startGuard("/v1/models", { headers: { "x-api-key": key, "x-sink-stream": "endless" } }, { ORIGIN: env.SINK, ...overrides });
	expect(response.status).toBe(200);
	const reader = (response.body as ReadableStream<Uint8Array>).getReader();
	expect(decoder.decode((await reader.read()).value)).toContain("event: tick");
	return { response, reader };
}

afterEach(() => {
	vi.restoreAllMocks();
});

describe("load shedding", () => {
	// One object per test, so the isolate keeps one gate for the test's requests.
	it("answers 529 overloaded_error at once, with retry-after, when the guard is full; admitted requests keep streaming", async () => {
		const overrides = { OVERLOAD: { max_in_flight: 2, org_share: 1, retry_after_seconds: 3 } };
		const first = await inFlight(overrides);
		const second = await inFlight(overrides);
		const shed = await callGuardToSink("/v1/models", { headers: { "x-sink-tag": "never-sent" } }, overrides);
		expect(shed.status).toBe(529);
		const body = await readEnvelope(shed);
		expect(body.error).toEqual({ type: "overloaded_error", message: "This service is overloaded (2 requests in flight on the guard). Please retry shortly." });
		expect(shed.headers.get("retry-after")).toBe("3");
		expect(shed.headers.get("x-should-retry")).toBe("true");
		await expect(sinkRecord(body.request_id)).rejects.toThrow("no record");
		// Shedding never cuts what it admitted: both streams still deliver.
		for (const { reader } of [first, second]) expect(decoder.decode((await reader.read()).value)).toContain("event: tick");
		await first.reader.cancel();
		// A finished request frees its slot.
		const third = await inFlight(overrides);
		await third.reader.cancel();
		await second.reader.cancel();
	});

	it("bounds a route group on its own: a full group sheds while other groups are served", async () => {
		const overrides = { OVERLOAD: { max_in_flight: 10, org_share: 1, groups: { models: 1 } } };
		const held = await inFlight(overrides);
		const shed = await callGuardToSink("/v1/models", {}, overrides);
		expect(shed.status).toBe(529);
		expect((await readEnvelope(shed)).error.message).toContain('1 requests in flight on "models"');
		const other = await callGuardToSink("/v1/files", {}, overrides);
		expect(other.status).toBe(200);
		await held.reader.cancel();
	});

	it("refuses an OVERLOAD group no route has, naming the field", async () => {
		const { response, envelope, problem } = await configProblem("/v1/models", { OVERLOAD: { groups: { modles: 5 } } });
		expect(response.status).toBe(500);
		expect(envelope.error.message).toBe(MISCONFIGURED);
		expect(problem).toContain("OVERLOAD.groups.modles: no route has this group");
	});
});

describe("fairness", () => {
	it("answers 429 to the organisation that holds its share, while another organisation is admitted", async () => {
		await seedKey(env.KEYS as KVNamespace, OTHER_ORG_KEY, { id: "key_other", org_id: "org_other" });
		const overrides = { OVERLOAD: { max_in_flight: 4, org_share: 0.5 } };
		const held = [await inFlight(overrides), await inFlight(overrides)];
		const refused = await callGuardToSink("/v1/models", {}, overrides);
		expect(refused.status).toBe(429);
		const body = await readEnvelope(refused);
		expect(body.error.type).toBe("rate_limit_error");
		expect(body.error.message).toContain('2 requests in flight on "models"');
		expect(refused.headers.get("retry-after")).toBe("1");
		// Counted for the operator console as a share refusal, with its request ID.
		const counted = usageTally.take("org_test") ?? [];
		expect(counted.reduce((sum, minute) => sum + (minute.refused?.share ?? 0), 0)).toBe(1);
		expect(counted.some((minute) => minute.lastRefusal?.requestId === body.request_id)).toBe(true);
		const other = await callGuardToSink("/v1/models", { headers: { "x-api-key": OTHER_ORG_KEY } }, overrides);
		expect(other.status).toBe(200);
		for (const { reader } of held) await reader.cancel();
	});
});

describe("origin circuit breaker", () => {
	it("opens after repeated origin failures, answers 529 without contacting the origin, and logs the change once", async () => {
		const log = vi.spyOn(console, "log");
		const overrides = { OVERLOAD: { breaker: { failures: 2, min_requests: 2, window_seconds: 60, cooldown_seconds: 30, probes: 1 } } };
		for (let i = 0; i < 2; i++) {
			const failed = await callGuardToSink("/v1/models", { headers: { "x-sink-status": "503" } }, overrides);
			expect(failed.status).toBe(503);
		}
		const refused = await callGuardToSink("/v1/models", {}, overrides);
		expect(refused.status).toBe(529);
		const body = await readEnvelope(refused);
		expect(body.error.message).toBe("The upstream service is failing; requests to it are paused. Please retry shortly.");
		expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(29);
		await expect(sinkRecord(body.request_id)).rejects.toThrow("no record");
		const transitions = log.mock.calls.map(([line]) => line).filter((line) => line?.message === "origin circuit breaker");
		expect(transitions).toEqual([expect.objectContaining({ from: "closed", to: "open", failures_in_window: 2, origin: "service:ORIGIN" })]);
	});

	it("does not count the client's own errors (4xx) as origin failures", async () => {
		const overrides = { OVERLOAD: { breaker: { failures: 2, min_requests: 2, window_seconds: 60, cooldown_seconds: 30, probes: 1 } } };
		for (let i = 0; i < 3; i++) {
			expect((await callGuardToSink("/v1/models", { headers: { "x-sink-status": "404" } }, overrides)).status).toBe(404);
		}
		expect((await callGuardToSink("/v1/models", {}, overrides)).status).toBe(200);
	});
});
