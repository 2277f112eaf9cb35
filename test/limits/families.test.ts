import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { generateApiKey } from "../../src/keys/api-key";
import { familyOf } from "../../src/limits/rates/families";
import type { RequestLogLine } from "../../src/log/request-log";
import { callGuard, callGuardToSink, chunkedStream, readEnvelope, sha256Hex, sinkRecord } from "../helpers";
import { seedKey } from "../keys";
import { client, fakeClock, limits, newOrg, tierTable, usageObject } from "./helpers";

const POOLS = {
	requests_per_minute: 100,
	input_tokens_per_minute: 100_000,
	output_tokens_per_minute: 100_000,
	families: {
		opus: { models: ["claude-opus-*"], requests_per_minute: 6, input_tokens_per_minute: 200_000, output_tokens_per_minute: 9000 },
		haiku: { models: ["claude-haiku-*", "claude-3-5-haiku-*"], requests_per_minute: 4, input_tokens_per_minute: 40_000, output_tokens_per_minute: 8000 },
		// Priced only: it shares the organisation's pool.
		sonnet: { models: ["claude-sonnet-*"], price: { input: 3, output: 15, cache_write: 3.75, cache_read: 0.3 } },
	},
};

/** A fresh organisation on a tier with the families above, and a key for it. */
async function pooledOrg() {
	const org = newOrg();
	const key = generateApiKey();
	await seedKey(env.KEYS as KVNamespace, key, { id: `key_${org}`, org_id: org });
	return { org, key, overrides: { TIERS: { ...(env.TIERS as Record<string, unknown>), pools: POOLS }, ORG_TIERS: { [org]: "pools" } } };
}

function message(key: string, model: string, extra: Record<string, string> = {}): RequestInit {
	return {
		method: "POST",
		headers: { "x-api-key": key, "content-type": "application/json", ...extra },
		body: JSON.stringify({ model, max_tokens: 32, messages: [{ role: "user", content: "Hi" }] }),
	};
}

async function ask(key: string, model: string, overrides: Record<string, unknown>): Promise<Response> {
	const response = await callGuard("/v1/messages", message(key, model), overrides);
	await response.clone().arrayBuffer();
	return response;
}

const remaining = (response: Response, name = "requests") => Number(response.headers.get(`anthropic-ratelimit-${name}-remaining`));
const limitOf = (response: Response, name = "requests") => Number(response.headers.get(`anthropic-ratelimit-${name}-limit`));

/** An origin that answers every request with this JSON message, after reading the whole body. */
function answering(body: Record<string, unknown>): Fetcher {
	return {
		fetch: async (_input: RequestInfo | URL, init?: RequestInit) => {
			await new Response(init?.body ?? null).arrayBuffer();
			return Response.json(body);
		},
	} as unknown as Fetcher;
}

describe("model families: configuration", () => {
	it("puts a model in the first family whose pattern matches it", () => {
		const tier = tierTable(POOLS).tiers.get("default");
		const names = ["claude-opus-4-1", "claude-3-5-haiku-latest", "claude-sonnet-4-6", "gpt-4", "claude-opus"].map((model) => familyOf(tier?.families ?? [], model)?.name);
		expect(names).toEqual(["opus", "haiku", "sonnet", undefined, undefined]);
		expect(tier?.pooled).toBe(true);
	});
});

describe("model families on the request path", () => {
	afterEach(() => {
		vi.restoreAllMocks();
	});

	it("limits two families independently: a burst on one leaves the other's remaining untouched", async () => {
		const { key, overrides } = await pooledOrg();
		const haiku: number[] = [];
		for (let i = 0; i < 4; i++) {
			const response = await ask(key, "claude-haiku-4-5", overrides);
			expect(response.status).toBe(200);
			expect(limitOf(response)).toBe(4);
			haiku.push(remaining(response));
		}
		expect(haiku).toEqual([3, 2, 1, 0]);
		const limited = await ask(key, "claude-haiku-4-5", overrides);
		expect(limited.status).toBe(429);
		const envelope = await readEnvelope(limited);
		expect(envelope.error.type).toBe("rate_limit_error");
		expect(envelope.error.message).toContain("4 requests per minute for the haiku model family");
		// Opus has its own pool, and the organisation's own pool is untouched too.
		const opus = await ask(key, "claude-opus-4-1", overrides);
		expect(opus.status).toBe(200);
		expect([limitOf(opus), remaining(opus)]).toEqual([6, 5]);
		// Its max_tokens (32) is claimed in Opus's pool alone.
		expect([limitOf(opus, "output-tokens"), remaining(opus, "output-tokens")]).toEqual([9000, 9000 - 32]);
		const models = await callGuard("/v1/models", { headers: { "x-api-key": key } }, overrides);
		expect([limitOf(models), remaining(models)]).toEqual([100, 99]);
	});

	it("charges a model of a family without a pool, and a model of no family, to the organisation's pool", async () => {
		const { key, overrides } = await pooledOrg();
		const sonnet = await ask(key, "claude-sonnet-4-6", overrides);
		expect([limitOf(sonnet), remaining(sonnet)]).toEqual([100, 99]);
		const other = await ask(key, "some-other-model", overrides);
		expect([limitOf(other), remaining(other)]).toEqual([100, 98]);
	});

	it("logs the family it charged", async () => {
		const lines: RequestLogLine[] = [];
		vi.spyOn(console, "log").mockImplementation((line: unknown) => void lines.push(line as RequestLogLine));
		const { key, overrides } = await pooledOrg();
		const response = await ask(key, "claude-opus-4-1", overrides);
		const line = lines.find((entry) => entry.request_id === response.headers.get("request-id"));
		expect(line?.decisions.limit).toMatchObject({ outcome: "admitted", model: "claude-opus-4-1", family: "opus" });
	});

	it("charges the family of the model the origin reports, and the pool that admitted the request keeps it", async () => {
		const { key, overrides } = await pooledOrg();
		const origin = answering({ type: "message", model: "claude-opus-4-1", content: [], usage: { input_tokens: 10, output_tokens: 700 } });
		const started = Date.now();
		const asked = await callGuard("/v1/messages", message(key, "claude-haiku-4-5"), { ...overrides, ORIGIN: origin });
		expect(remaining(asked)).toBe(3);
		await asked.arrayBuffer();
		// Not refunded below what it admitted: a moved charge never frees the admitting pool.
		const haiku = await ask(key, "claude-haiku-4-5", overrides);
		expect(remaining(haiku)).toBe(2);
		const opus = await ask(key, "claude-opus-4-1", overrides);
		expect(remaining(opus)).toBe(4);
		// 700 charged there and 32 claimed by this ask, less what Opus's bucket refilled meanwhile (9,000 a minute): on a busy machine that is more than a few tokens.
		const refilled = Math.ceil(((Date.now() - started) * 9000) / 60_000);
		expect(remaining(opus, "output-tokens")).toBeLessThanOrEqual(9000 - 700 - 32 + refilled);
	});

	it("reads a model that comes after a long prompt from the answer instead, and settles there", async () => {
		const { key, overrides } = await pooledOrg();
		// As a client that writes `messages` first sends it: `model` is past the first 64 KiB.
		const body = JSON.stringify({ max_tokens: 32, messages: [{ role: "user", content: "p".repeat(100_000) }], model: "claude-opus-4-1" });
		const first = await callGuard("/v1/messages", { method: "POST", headers: { "x-api-key": key, "content-type": "application/json" }, body }, overrides);
		expect(first.status).toBe(200);
		expect(limitOf(first)).toBe(100);
		await first.arrayBuffer();
		const opus = await ask(key, "claude-opus-4-1", overrides);
		expect(remaining(opus)).toBe(4);
		const models = await callGuard("/v1/models", { headers: { "x-api-key": key } }, overrides);
		expect(remaining(models)).toBe(99);
	});

	it("forwards every byte of a body whose model it read first, declared or chunked", async () => {
		const { key, overrides } = await pooledOrg();
		const text = JSON.stringify({ model: "claude-opus-4-1", max_tokens: 32, messages: [{ role: "user", content: "b".repeat(300_000) }] });
		const bytes = new TextEncoder().encode(text);
		const headers = { "x-api-key": key, "content-type": "application/json", "content-length": String(bytes.length) };
		const declared = await callGuardToSink("/v1/messages", { method: "POST", headers, body: text }, overrides);
		expect(declared.status).toBe(200);
		expect(limitOf(declared)).toBe(6);
		const record = await sinkRecord(declared.headers.get("request-id") ?? "");
		expect({ bytes: record.bytes, sha256: record.sha256, length: record.headers["content-length"] }).toEqual({
			bytes: bytes.length,
			sha256: await sha256Hex(bytes),
			length: String(bytes.length),
		});
		const chunked = await callGuardToSink(
			"/v1/messages",
			{ method: "POST", headers: { "x-api-key": key, "content-type": "application/json" }, body: chunkedStream(bytes, 1000), duplex: "half" } as RequestInit,
			overrides,
		);
		expect(limitOf(chunked)).toBe(6);
		const streamed = await sinkRecord(chunked.headers.get("request-id") ?? "");
		expect({ bytes: streamed.bytes, sha256: streamed.sha256 }).toEqual({ bytes: bytes.length, sha256: await sha256Hex(bytes) });
	});
});

describe("model families in lease mode", () => {
	it("leases each family's pool on its own, and moves a request settled to another family", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		const stub = await usageObject(orgId, clock);
		const limiter = client(tierTable(POOLS), clock, { mode: "lease", lease: { maxFraction: 1, flushMs: 1 } });
		const haiku = [];
		for (let i = 0; i < 5; i++) haiku.push(await limiter.admit({ orgId, inputTokens: 0, family: "haiku" }));
		expect(haiku.map((decision) => decision.admitted)).toEqual([true, true, true, true, false]);
		expect(haiku[4]).toMatchObject({ limit: "requests", family: "haiku" });
		const opus = await limiter.admit({ orgId, inputTokens: 0, family: "opus" });
		if (!opus.admitted) throw new Error("opus was refused");
		expect(opus.snapshot.requests.limit).toBe(6);
		expect(opus.family).toBe("opus");
		// Asked as opus, answered by a Haiku model: the request and its output move to haiku's pool.
		await limiter.settle(opus.reservation, { inputTokens: 0, outputTokens: 300, family: "haiku" });
		await Promise.all(limiter.background);
		const pool = (family: string, perMinute: Record<string, number>) => ({ ...limits(), pool: { family, limits: { ...limits().organization, ...perMinute } } });
		const view = (family: string, perMinute: Record<string, number>) =>
			stub.admit({ orgId, limits: pool(family, perMinute), cost: { requests: 0, inputTokens: 0, outputTokens: 0 } });
		const haikuNow = (await view("haiku", { requestsPerMinute: 4, inputTokensPerMinute: 40_000, outputTokensPerMinute: 8000 })).snapshot;
		expect(haikuNow.outputTokens.remaining).toBe(8000 - 300);
		const opusNow = (await view("opus", { requestsPerMinute: 6, inputTokensPerMinute: 200_000, outputTokensPerMinute: 9000 })).snapshot;
		expect(opusNow.outputTokens.remaining).toBe(9000);
	});
});
