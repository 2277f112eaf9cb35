import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { withRetryHints } from "../src/errors/error-response";
import { callGuardToSink, startGuard } from "./helpers";
import { seedKey } from "./keys";

/** The two hints every 429 and 529 carries. */
function hints(response: Response): [string | null, string | null] {
	return [response.headers.get("retry-after"), response.headers.get("retry-after-ms")];
}

function originAnswer(status: number, headers: Record<string, string> = {}): RequestInit {
	const body = JSON.stringify({ type: "error", error: { type: status === 529 ? "overloaded_error" : "rate_limit_error", message: "busy" } });
	return { headers: { "x-sink-status": String(status), "x-sink-content-type": "application/json", "x-sink-body": body, "x-sink-headers": JSON.stringify(headers) } };
}

describe("one retry-hint policy for every 429 and 529", () => {
	it("gives a shed 529 both retry-after and retry-after-ms", async () => {
		const overrides = { OVERLOAD: { max_in_flight: 1, org_share: 1, retry_after_seconds: 2 } };
		const { response: held } = await startGuard("/v1/models", { headers: { "x-sink-stream": "endless" } }, { ORIGIN: env.SINK, ...overrides });
		const shed = await callGuardToSink("/v1/models", {}, overrides);
		expect(shed.status).toBe(529);
		expect(hints(shed)).toEqual(["2", "2000"]);
		await held.body?.cancel();
	});

	it("gives the organisation-share 429 both hints", async () => {
		const key = "sk-guard-RetryHintsShareKey0000000000000000000";
		await seedKey(env.KEYS as KVNamespace, key, { id: "key_hints", org_id: "org_hints_share" });
		const overrides = { OVERLOAD: { max_in_flight: 4, org_share: 0.25, retry_after_seconds: 1 } };
		const { response: held } = await startGuard("/v1/models", { headers: { "x-api-key": key, "x-sink-stream": "endless" } }, { ORIGIN: env.SINK, ...overrides });
		const refused = await callGuardToSink("/v1/models", { headers: { "x-api-key": key } }, overrides);
		expect(refused.status).toBe(429);
		expect(hints(refused)).toEqual(["1", "1000"]);
		await held.body?.cancel();
	});

	it("gives an origin's own 529 without hints both, at the default second", async () => {
		const relayed = await callGuardToSink("/v1/models", originAnswer(529));
		expect(relayed.status).toBe(529);
		expect(hints(relayed)).toEqual(["1", "1000"]);
	});

	it("keeps an origin's own values, and derives the missing one from them", async () => {
		const seconds = await callGuardToSink("/v1/models", originAnswer(429, { "retry-after": "7" }));
		expect(hints(seconds)).toEqual(["7", "7000"]);
		const millis = await callGuardToSink("/v1/models", originAnswer(529, { "retry-after-ms": "2500" }));
		expect(hints(millis)).toEqual(["3", "2500"]);
		const both = await callGuardToSink("/v1/models", originAnswer(429, { "retry-after": "4", "retry-after-ms": "3200" }));
		expect(hints(both)).toEqual(["4", "3200"]);
	});

	it("turns an HTTP-date retry-after into seconds and milliseconds", () => {
		const now = Date.parse("2026-11-30T00:00:00Z");
		const headers = withRetryHints(new Headers({ "retry-after": "Mon, 30 Nov 2026 00:00:30 GMT" }), now);
		expect([headers.get("retry-after"), headers.get("retry-after-ms")]).toEqual(["30", "30000"]);
	});

	it("leaves other statuses without hints", async () => {
		const notFound = await callGuardToSink("/nowhere");
		expect(notFound.status).toBe(404);
		expect(hints(notFound)).toEqual([null, null]);
	});
});
