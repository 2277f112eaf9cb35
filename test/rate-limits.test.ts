import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { generateApiKey } from "../src/keys/api-key";
import { callGuardToSink, readEnvelope, sinkRecord } from "./helpers";
import { seedKey } from "./keys";

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
let orgs = 0;

/** A fresh organisation on the `tight` tier (10 requests per minute), and a key for it. */
async function tightOrg() {
	const org = `org_rl_${Date.now()}_${orgs++}`;
	const key = generateApiKey();
	await seedKey(env.KEYS as KVNamespace, key, { id: `key_${org}`, org_id: org });
	return { key, overrides: { ORG_TIERS: { [org]: "tight" } } };
}

describe("usage limits on the request path", () => {
	it("reports the organisation's limits on every admitted response", async () => {
		const { key, overrides } = await tightOrg();
		const response = await callGuardToSink("/v1/models", { headers: { "x-api-key": key } }, overrides);
		expect(response.status).toBe(200);
		expect(response.headers.get("anthropic-ratelimit-requests-limit")).toBe("10");
		expect(response.headers.get("anthropic-ratelimit-requests-remaining")).toBe("9");
		for (const name of ["requests", "input-tokens", "output-tokens", "tokens"]) {
			expect(response.headers.get(`anthropic-ratelimit-${name}-reset`)).toMatch(RFC3339);
			expect(response.headers.get(`anthropic-ratelimit-${name}-limit`)).toMatch(/^\d+$/);
		}
	});

	it("answers 429 rate_limit_error with retry-after once the tier's requests are spent", async () => {
		const { key, overrides } = await tightOrg();
		const remaining: string[] = [];
		for (let i = 0; i < 10; i++) {
			const ok = await callGuardToSink("/v1/models", { headers: { "x-api-key": key } }, overrides);
			expect(ok.status).toBe(200);
			remaining.push(ok.headers.get("anthropic-ratelimit-requests-remaining") ?? "");
		}
		expect(remaining).toEqual(["9", "8", "7", "6", "5", "4", "3", "2", "1", "0"]);
		const limited = await callGuardToSink("/v1/models", { headers: { "x-api-key": key } }, overrides);
		expect(limited.status).toBe(429);
		const body = await readEnvelope(limited);
		expect(body.error.type).toBe("rate_limit_error");
		expect(body.error.message).toContain("10 requests per minute");
		expect(body.request_id).toBe(limited.headers.get("request-id"));
		const retryAfter = Number(limited.headers.get("retry-after"));
		const retryAfterMs = Number(limited.headers.get("retry-after-ms"));
		expect(Number.isInteger(retryAfter) && retryAfter >= 1).toBe(true);
		expect(retryAfterMs).toBeGreaterThan(0);
		expect(retryAfter).toBe(Math.max(1, Math.ceil(retryAfterMs / 1000)));
		expect(limited.headers.get("x-should-retry")).toBe("true");
		expect(limited.headers.get("anthropic-ratelimit-requests-remaining")).toBe("0");
		await expect(sinkRecord(body.request_id)).rejects.toThrow("no record");
	});

	it("does not charge a request that a later check refuses", async () => {
		const { key, overrides } = await tightOrg();
		const oversized = new Request("https://guard.test/v1/messages", {
			method: "POST",
			body: new ReadableStream({ pull: (controller) => controller.close() }),
			headers: { "x-api-key": key, "content-type": "application/json", expect: "100-continue" },
			duplex: "half",
		} as RequestInit);
		oversized.headers.set("content-length", "33554433");
		const refused = await callGuardToSink(oversized, undefined, overrides);
		expect(refused.status).toBe(413);
		const next = await callGuardToSink("/v1/models", { headers: { "x-api-key": key } }, overrides);
		expect(next.headers.get("anthropic-ratelimit-requests-remaining")).toBe("9");
	});

	it("admits the request and says so when the usage object fails (fail open)", async () => {
		const { key, overrides } = await tightOrg();
		const failing = {
			idFromName: (name: string) => (env.USAGE as unknown as DurableObjectNamespace).idFromName(name),
			get: () => ({
				admit: () => Promise.reject(new Error("object exploded")),
				settle: () => Promise.reject(new Error("object exploded")),
				lease: () => Promise.reject(new Error("object exploded")),
			}),
		} as unknown as DurableObjectNamespace;
		const response = await callGuardToSink("/v1/models", { headers: { "x-api-key": key } }, { ...overrides, USAGE: failing as never });
		expect(response.status).toBe(200);
		expect(response.headers.get("x-guard-ratelimit")).toBe("unavailable");
	});
});
