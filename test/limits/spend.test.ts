import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { generateApiKey } from "../../src/keys/api-key";
import type { Decision, Rejection, Reservation } from "../../src/limits/decisions";
import { formatUsd, windowOf } from "../../src/limits/spend/money";
import type { RequestLogLine } from "../../src/log/request-log";
import type { UsageObject } from "../../src/limits/usage-object/usage-object";
import { callGuard, readEnvelope, startGuard } from "../helpers";
import { seedKey } from "../keys";
import { client, fakeClock, limits, newOrg, tierTable, usageObject } from "./helpers";

const MIDNIGHT = Date.UTC(2027, 0, 31, 0, 0, 0);

function admitted(decision: Decision): Reservation {
	if (!decision.admitted) throw new Error(`expected an admission, got ${decision.limit}`);
	return decision.reservation;
}

function refused(decision: Decision): Rejection {
	if (decision.admitted) throw new Error("expected a refusal");
	return decision;
}

/** A tier priced so one request costs what `settle` says, with the budgets given (USD). */
function budgetTier(budgets: Record<string, Record<string, number>>) {
	return tierTable({ price: { input: 1, output: 1, cache_write: 1, cache_read: 1 }, budgets });
}

/** The rows of the usage object's `spend` table, as stored. */
async function spendRows(stub: DurableObjectStub<UsageObject>): Promise<{ scope: string; period: string }[]> {
	const { runInDurableObject } = await import("cloudflare:test");
	return runInDurableObject(stub, (_, state) => state.storage.sql.exec<{ scope: string; period: string }>("SELECT scope, period FROM spend").toArray());
}

describe("budgets in the usage object", () => {
	it("admits while spend is below the budget: the request that reaches it exactly is the last admitted", async () => {
		const orgId = newOrg();
		const clock = fakeClock(MIDNIGHT + 3_600_000);
		await usageObject(orgId, clock);
		// $0.000001 a day = 1000 nano-dollars.
		const limiter = client(budgetTier({ organization: { day: 0.000001 } }), clock);
		for (const cost of [400, 400, 200]) {
			const reservation = admitted(await limiter.admit({ orgId, inputTokens: 0 }));
			await limiter.settle(reservation, { inputTokens: 0, outputTokens: 0, costNanos: cost });
		}
		const rejection = refused(await limiter.admit({ orgId, inputTokens: 0 }));
		expect(rejection).toMatchObject({ limit: "spend", scope: "organization", budget: { period: "day", limitNanos: 1000, spentNanos: 1000, resetAt: MIDNIGHT + 86_400_000 } });
		expect(rejection.retryAfterMs).toBe(MIDNIGHT + 86_400_000 - clock.now);
	});

	it("admits the request that would cross the budget, then refuses until the day turns", async () => {
		const orgId = newOrg();
		const clock = fakeClock(MIDNIGHT + 3_600_000);
		await usageObject(orgId, clock);
		const limiter = client(budgetTier({ organization: { day: 0.000001 } }), clock);
		await limiter.settle(admitted(await limiter.admit({ orgId, inputTokens: 0 })), { inputTokens: 0, outputTokens: 0, costNanos: 999 });
		// Spend is 999, under the budget: admitted, and its cost takes spend past it.
		await limiter.settle(admitted(await limiter.admit({ orgId, inputTokens: 0 })), { inputTokens: 0, outputTokens: 0, costNanos: 500 });
		expect(refused(await limiter.admit({ orgId, inputTokens: 0 })).budget?.spentNanos).toBe(1499);
		clock.now = MIDNIGHT + 86_400_000 - 1;
		expect(refused(await limiter.admit({ orgId, inputTokens: 0 })).limit).toBe("spend");
		clock.advance(1);
		admitted(await limiter.admit({ orgId, inputTokens: 0 }));
	});

	it("keeps a monthly budget across days, and resets it when the month turns", async () => {
		const orgId = newOrg();
		const clock = fakeClock(Date.UTC(2027, 0, 30, 12));
		await usageObject(orgId, clock);
		const limiter = client(budgetTier({ organization: { month: 0.000001 } }), clock, { rememberRejections: false });
		await limiter.settle(admitted(await limiter.admit({ orgId, inputTokens: 0 })), { inputTokens: 0, outputTokens: 0, costNanos: 1000 });
		clock.now = Date.UTC(2027, 0, 31, 12);
		expect(refused(await limiter.admit({ orgId, inputTokens: 0 }))).toMatchObject({ budget: { period: "month", resetAt: Date.UTC(2027, 1, 1) } });
		clock.now = Date.UTC(2027, 1, 1);
		admitted(await limiter.admit({ orgId, inputTokens: 0 }));
	});

	it("limits each key and each workspace on its own, and counts their spend for the organisation", async () => {
		const orgId = newOrg();
		const clock = fakeClock(MIDNIGHT + 1000);
		const stub = await usageObject(orgId, clock);
		const limiter = client(budgetTier({ organization: { day: 0.00001 }, workspace: { day: 0.000002 }, key: { day: 0.000001 } }), clock);
		const spend = async (keyId: string, workspaceId: string | undefined, costNanos: number) =>
			limiter.settle(admitted(await limiter.admit({ orgId, keyId, workspaceId, inputTokens: 0 })), { inputTokens: 0, outputTokens: 0, costNanos });
		await spend("key_a", undefined, 1000);
		expect(refused(await limiter.admit({ orgId, keyId: "key_a", inputTokens: 0 }))).toMatchObject({ scope: "key", budget: { id: "key_a" } });
		await spend("key_b", "wrk_1", 900);
		await spend("key_c", "wrk_1", 1100);
		expect(refused(await limiter.admit({ orgId, keyId: "key_d", workspaceId: "wrk_1", inputTokens: 0 }))).toMatchObject({ scope: "workspace", budget: { id: "wrk_1", spentNanos: 2000 } });
		admitted(await limiter.admit({ orgId, keyId: "key_d", workspaceId: "wrk_2", inputTokens: 0 }));
		const report = await stub.report();
		expect(report.filter((line) => line.period === "day").map(({ scope, id, spentNanos }) => ({ scope, id, spentNanos }))).toEqual(
			expect.arrayContaining([
				{ scope: "organization", id: undefined, spentNanos: 3000 },
				{ scope: "key", id: "key_a", spentNanos: 1000 },
				{ scope: "workspace", id: "wrk_1", spentNanos: 2000 },
			]),
		);
	});

	it("keeps spend after its buckets go idle, and forgets it once the period has turned", async () => {
		const orgId = newOrg();
		const clock = fakeClock(MIDNIGHT + 1000);
		const stub = await usageObject(orgId, clock);
		const tier = { ...limits(), budgets: { organization: { day: 1000 } } };
		await stub.admit({ orgId, limits: tier, cost: { requests: 1, inputTokens: 0, outputTokens: 0 } });
		await stub.settle({ orgId, limits: tier, inputTokens: 0, outputTokens: 0, spend: [{ nanos: 1000 }] });
		const { runDurableObjectAlarm } = await import("cloudflare:test");
		clock.advance(20 * 60_000);
		await runDurableObjectAlarm(stub);
		expect((await stub.admit({ orgId, limits: tier, cost: { requests: 1, inputTokens: 0, outputTokens: 0 } })).admitted).toBe(false);
		expect(await spendRows(stub)).toContainEqual({ scope: "org", period: "day" });
		clock.now = MIDNIGHT + 86_400_000 + 20 * 60_000;
		await runDurableObjectAlarm(stub);
		expect(await stub.report()).toEqual([]);
		// Forgotten in storage too, not only hidden by report(): the object's SQLite keeps no old period.
		expect(await spendRows(stub)).toEqual([]);
	});

	it("tells isolates in lease mode which budgets are spent, so they refuse locally", async () => {
		const orgId = newOrg();
		const clock = fakeClock(MIDNIGHT + 1000);
		await usageObject(orgId, clock);
		const limiter = client(budgetTier({ organization: { day: 0.000001 } }), clock, { mode: "lease", lease: { flushMs: 1 } });
		for (let i = 0; i < 2; i++) {
			await limiter.settle(admitted(await limiter.admit({ orgId, inputTokens: 0 })), { inputTokens: 0, outputTokens: 0, costNanos: 600 });
		}
		await Promise.all(limiter.background);
		const calls = limiter.stats.objectCalls;
		expect(refused(await limiter.admit({ orgId, inputTokens: 0 }))).toMatchObject({ limit: "spend", source: "note", budget: { spentNanos: 1200 } });
		expect(limiter.stats.objectCalls).toBe(calls);
	});
});

describe("the money 429 on the request path", () => {
	afterEach(() => {
		vi.restoreAllMocks();
	});

	/** One "Hello" to claude-sonnet-4-6 from the demo origin: 9 input and 12 output tokens at $3 and $15 per million. */
	const HELLO_NANOS = 207_000;

	async function budgetOrg(dayUsd: number) {
		const org = newOrg();
		const key = generateApiKey();
		await seedKey(env.KEYS as KVNamespace, key, { id: `key_${org}`, org_id: org });
		const tiers = env.TIERS as Record<string, unknown>;
		const priced = {
			requests_per_minute: 1000,
			input_tokens_per_minute: 100_000,
			output_tokens_per_minute: 100_000,
			price: { input: 3, output: 15, cache_write: 3.75, cache_read: 0.3 },
			budgets: { organization: { day: dayUsd } },
		};
		return { org, key, overrides: { TIERS: { ...tiers, priced }, ORG_TIERS: { [org]: "priced" } } };
	}

	const HELLO_BODY = JSON.stringify({ model: "claude-sonnet-4-6", max_tokens: 12, messages: [{ role: "user", content: "Hello" }] });
	/** What a hello claims at admission: its body's bytes / 4 of input at $3, and its max_tokens (12) of output at $15 per million. */
	const HELLO_CLAIM_NANOS = Math.ceil(HELLO_BODY.length / 4) * 3000 + 12 * 15_000;

	const hello = (key: string) => ({
		method: "POST",
		headers: { "x-api-key": key, "content-type": "application/json", "content-length": String(HELLO_BODY.length) },
		body: HELLO_BODY,
	});

	it("admits while the spend and the claim fit, then answers 429 naming what the request could cost, with x-should-retry false and no retry hints", async () => {
		const lines: RequestLogLine[] = [];
		vi.spyOn(console, "log").mockImplementation((line: unknown) => void lines.push(line as RequestLogLine));
		// Room for one hello's cost and a second hello's claim: two are admitted, the third's claim cannot fit.
		const budget = HELLO_NANOS + HELLO_CLAIM_NANOS;
		const { org, key, overrides } = await budgetOrg(budget / 1e9);
		for (let i = 0; i < 2; i++) {
			const ok = await startGuard("/v1/messages", hello(key), overrides);
			expect(ok.response.status).toBe(200);
			await ok.response.arrayBuffer();
			await ok.settled();
		}
		const refused = await callGuard("/v1/messages", hello(key), overrides);
		expect(refused.status).toBe(429);
		const body = await readEnvelope(refused);
		expect(body.error.type).toBe("rate_limit_error");
		const tomorrow = new Date(windowOf("day", Date.now()).resetAt).toISOString();
		expect(body.error.message).toBe(
			`This request could cost up to ${formatUsd(HELLO_CLAIM_NANOS)} (its input estimate and max_tokens at the model's prices), more than the ${formatUsd(budget - 2 * HELLO_NANOS)} left of your organization's daily spend budget of ${formatUsd(budget)}. Lower max_tokens, or retry once requests in flight have finished; the budget resets at ${tomorrow}.`,
		);
		expect(refused.headers.get("x-should-retry")).toBe("false");
		expect(refused.headers.get("retry-after")).toBeNull();
		expect(refused.headers.get("retry-after-ms")).toBeNull();
		expect(refused.headers.get("anthropic-organization-id")).toBe(org);
		const charged = lines.filter((line) => line.org_id === org && line.status === 200).map((line) => line.decisions.spend);
		expect(charged).toEqual([
			{ outcome: "charged", family: null, cost_usd: HELLO_NANOS / 1e9 },
			{ outcome: "charged", family: null, cost_usd: HELLO_NANOS / 1e9 },
		]);
		const refusal = lines.find((line) => line.request_id === body.request_id);
		expect(refusal?.decisions.spend).toEqual({ outcome: "over-budget", scope: "organization", period: "day", budget_usd: budget / 1e9, spent_usd: (2 * HELLO_NANOS) / 1e9, resets_at: tomorrow });
	});

	it("counts a claim in flight against the budget: a second request is refused while the first holds the money", async () => {
		// Two claims do not fit at once; one settled hello and one claim do.
		const budget = HELLO_NANOS + HELLO_CLAIM_NANOS + 10_000;
		expect(budget).toBeLessThan(2 * HELLO_CLAIM_NANOS);
		const { key, overrides } = await budgetOrg(budget / 1e9);
		// An origin that answers the first request only when the test lets it: its claim is held until then.
		let arrived: () => void = () => undefined;
		const atOrigin = new Promise<void>((resolve) => {
			arrived = resolve;
		});
		let release: () => void = () => undefined;
		const gate = new Promise<void>((resolve) => {
			release = resolve;
		});
		const origin = {
			fetch: async (_input: RequestInfo | URL, init?: RequestInit) => {
				await new Response(init?.body ?? null).arrayBuffer();
				arrived();
				await gate;
				return Response.json({ type: "message", model: "claude-sonnet-4-6", content: [], usage: { input_tokens: 9, output_tokens: 12 } });
			},
		} as unknown as Fetcher;
		const first = startGuard("/v1/messages", hello(key), { ...overrides, ORIGIN: origin });
		await atOrigin;
		const second = await callGuard("/v1/messages", hello(key), { ...overrides, ORIGIN: origin });
		expect(second.status).toBe(429);
		expect((await readEnvelope(second)).error.message).toContain("is held by requests in flight");
		release();
		const answered = await first;
		expect(answered.response.status).toBe(200);
		await answered.response.arrayBuffer();
		await answered.settled();
		// Settled at its actual cost (less than its claim), the money it held is free again.
		const third = await startGuard("/v1/messages", hello(key), { ...overrides, ORIGIN: origin });
		expect(third.response.status).toBe(200);
		await third.response.arrayBuffer();
		await third.settled();
	});

	it("still gives every other 429 both retry hints", async () => {
		const { key, overrides } = await budgetOrg(1);
		const tight = { ...(overrides.TIERS as Record<string, Record<string, unknown>>) };
		tight.priced = { ...tight.priced, requests_per_minute: 1 };
		await (await callGuard("/v1/models", { headers: { "x-api-key": key } }, { ...overrides, TIERS: tight })).arrayBuffer();
		const limited = await callGuard("/v1/models", { headers: { "x-api-key": key } }, { ...overrides, TIERS: tight });
		expect(limited.status).toBe(429);
		expect(limited.headers.get("x-should-retry")).toBe("true");
		expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
		expect(Number(limited.headers.get("retry-after-ms"))).toBeGreaterThan(0);
	});
});
