import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Decision, Rejection } from "../../src/limits/decisions";
import { fakeClock, limits, newOrg, usageObject } from "./helpers";

const cost = (inputTokens = 0, outputTokens = 0) => ({ requests: 1, inputTokens, outputTokens });

function rejected(decision: Decision): Rejection {
	if (decision.admitted) throw new Error("expected a rejection");
	return decision;
}

describe("usage object", () => {
	it("admits up to the limit, then rejects with an exact retry-after", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		const stub = await usageObject(orgId, clock);
		const tier = limits({ requestsPerMinute: 7 });
		for (let i = 0; i < 7; i++) expect((await stub.admit({ orgId, limits: tier, cost: cost() })).admitted).toBe(true);
		const rejection = rejected(await stub.admit({ orgId, limits: tier, cost: cost() }));
		expect(rejection).toMatchObject({ limit: "requests", scope: "organization", allowedPerMinute: 7 });
		// 60 000 / 7 = 8571.43 ms for one request to refill.
		expect(rejection.retryAfterMs).toBe(8572);
		clock.advance(8571);
		expect((await stub.admit({ orgId, limits: tier, cost: cost() })).admitted).toBe(false);
		clock.advance(1);
		expect((await stub.admit({ orgId, limits: tier, cost: cost() })).admitted).toBe(true);
	});

	it("admits a retry after ceil(retry-after-ms / 1000) seconds", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		const stub = await usageObject(orgId, clock);
		const tier = limits({ inputTokensPerMinute: 1000 });
		expect((await stub.admit({ orgId, limits: tier, cost: cost(997) })).admitted).toBe(true);
		const rejection = rejected(await stub.admit({ orgId, limits: tier, cost: cost(333) }));
		expect(rejection.limit).toBe("input_tokens");
		expect(rejection.retryAfterMs).toBe(19_800);
		clock.advance(Math.ceil((rejection.retryAfterMs ?? 0) / 1000) * 1000);
		expect((await stub.admit({ orgId, limits: tier, cost: cost(333) })).admitted).toBe(true);
	});

	it("reports limit, remaining and reset for every bucket, and tokens as the most restrictive", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		const stub = await usageObject(orgId, clock);
		const tier = limits({ requestsPerMinute: 60, inputTokensPerMinute: 6000, outputTokensPerMinute: 600 });
		const decision = await stub.admit({ orgId, limits: tier, cost: cost(3000) });
		expect(decision.snapshot).toEqual({
			requests: { limit: 60, remaining: 59, resetAt: clock.now + 1000 },
			inputTokens: { limit: 6000, remaining: 3000, resetAt: clock.now + 30_000 },
			outputTokens: { limit: 600, remaining: 600, resetAt: clock.now },
			tokens: { limit: 600, remaining: 600, resetAt: clock.now },
		});
	});

	it("charges nothing for a request a later check rejects", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		const stub = await usageObject(orgId, clock);
		const tier = limits({ requestsPerMinute: 10, inputTokensPerMinute: 10_000 }, { workspace: { id: "wrk_a", limits: { inputTokensPerMinute: 100 } } });
		expect((await stub.admit({ orgId, limits: tier, cost: cost(80) })).admitted).toBe(true);
		const rejection = rejected(await stub.admit({ orgId, limits: tier, cost: cost(80) }));
		expect(rejection).toMatchObject({ limit: "input_tokens", scope: "workspace", allowedPerMinute: 100 });
		const without = limits({ requestsPerMinute: 10, inputTokensPerMinute: 10_000 });
		const after = await stub.admit({ orgId, limits: without, cost: cost(0) });
		expect(after.snapshot.requests.remaining).toBe(8);
		expect(after.snapshot.inputTokens.remaining).toBe(10_000 - 80);
	});

	it("applies workspace limits on top of the organisation's, which always apply", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		const stub = await usageObject(orgId, clock);
		const a = limits({ requestsPerMinute: 3 }, { workspace: { id: "wrk_a", limits: { requestsPerMinute: 2 } } });
		const b = limits({ requestsPerMinute: 3 }, { workspace: { id: "wrk_b", limits: { requestsPerMinute: 5 } } });
		expect((await stub.admit({ orgId, limits: a, cost: cost() })).admitted).toBe(true);
		const second = await stub.admit({ orgId, limits: a, cost: cost() });
		expect(second.snapshot.requests).toMatchObject({ limit: 2, remaining: 0 });
		expect(rejected(await stub.admit({ orgId, limits: a, cost: cost() })).scope).toBe("workspace");
		expect((await stub.admit({ orgId, limits: b, cost: cost() })).admitted).toBe(true);
		expect(rejected(await stub.admit({ orgId, limits: b, cost: cost() }))).toMatchObject({ limit: "requests", scope: "organization" });
	});

	it("reconciles input estimates and debits output tokens on settle", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		const stub = await usageObject(orgId, clock);
		const tier = limits({ inputTokensPerMinute: 1000, outputTokensPerMinute: 500 });
		await stub.admit({ orgId, limits: tier, cost: cost(400) });
		await stub.settle({ orgId, limits: tier, inputTokens: -100, outputTokens: 800 });
		const rejection = rejected(await stub.admit({ orgId, limits: tier, cost: cost(10) }));
		expect(rejection.limit).toBe("output_tokens");
		// 300 tokens of debt at 500 per minute.
		expect(rejection.retryAfterMs).toBe(36_000);
		expect(rejection.snapshot.inputTokens.remaining).toBe(700);
		expect(rejection.snapshot.tokens).toEqual(rejection.snapshot.outputTokens);
		clock.advance(36_000);
		expect((await stub.admit({ orgId, limits: tier, cost: cost(10) })).admitted).toBe(true);
	});

	it("says a request over a bucket's whole capacity can never pass", async () => {
		const orgId = newOrg();
		const stub = await usageObject(orgId, fakeClock());
		const rejection = rejected(await stub.admit({ orgId, limits: limits({ inputTokensPerMinute: 1000 }), cost: cost(1001) }));
		expect(rejection).toMatchObject({ limit: "input_tokens", retryAfterMs: null });
	});

	it("keeps its state across restarts", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		const tier = limits({ requestsPerMinute: 10 });
		const stub = await usageObject(orgId, clock);
		for (let i = 0; i < 3; i++) await stub.admit({ orgId, limits: tier, cost: cost() });
		await abortAllDurableObjects();
		const again = await usageObject(orgId, clock);
		expect((await again.admit({ orgId, limits: tier, cost: cost() })).snapshot.requests.remaining).toBe(6);
	});

	it("writes every bucket a call changed before it answers, however many: a claim over twenty family pools survives a restart", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		const base = limits({ requestsPerMinute: 100 });
		// Twenty pools of three buckets each, with the organisation's: more rows than one statement's bound parameters allow.
		const pools = Array.from({ length: 20 }, (_, i) => ({ ...base, pool: { family: `f${i}`, limits: { requestsPerMinute: 10 + i, inputTokensPerMinute: 1000, outputTokensPerMinute: 1000 } } }));
		const stub = await usageObject(orgId, clock);
		const decision = await stub.admit({ orgId, limits: base, cost: cost(100, 10), claim: { id: "wide", nanos: 0, pools } });
		expect(decision.admitted).toBe(true);
		await abortAllDurableObjects();
		const again = await usageObject(orgId, clock);
		for (const [i, pool] of pools.entries()) {
			const snapshot = (await again.admit({ orgId, limits: pool, cost: { requests: 0, inputTokens: 0, outputTokens: 0 } })).snapshot;
			expect([snapshot.requests.remaining, snapshot.inputTokens.remaining, snapshot.outputTokens.remaining]).toEqual([10 + i - 1, 900, 990]);
		}
		expect(await again.claimsReport()).toMatchObject({ outstanding: 1, held: { inputTokens: 100, outputTokens: 10 } });
	});

	it("empties its limit state with an alarm once idle, and not before (the usage history stays for the console)", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		const tier = limits({ requestsPerMinute: 10 });
		const stub = await usageObject(orgId, clock);
		await stub.admit({ orgId, limits: tier, cost: cost() });
		const rows = () =>
			runInDurableObject(stub, async (_instance, state) => {
				const tables = state.storage.sql.exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('buckets', 'meter')").toArray();
				const count = (name: string) => (state.storage.sql.exec(`SELECT COUNT(*) AS n FROM ${name}`).one() as { n: number }).n;
				const limitRows = tables.reduce((sum, table) => sum + count(String(table.name)), 0);
				return { alarm: await state.storage.getAlarm(), tables: tables.length, limitRows };
			});
		expect((await rows()).alarm).not.toBeNull();
		clock.advance(10 * 60_000);
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(await rows()).toMatchObject({ tables: 2 });
		expect((await rows()).alarm).not.toBeNull();
		clock.advance(60_000);
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		// The buckets and meter are gone; what remains is the pruned history (its own test in test/admin).
		expect((await rows()).limitRows).toBe(0);
		const fresh = await stub.admit({ orgId, limits: tier, cost: cost() });
		expect(fresh.snapshot.requests.remaining).toBe(9);
	});

	it("limits a sudden jump with a message to ramp up, with an exact retry-after", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		const stub = await usageObject(orgId, clock);
		const acceleration = { windowMs: 60_000, multiple: 2, floorPerMinute: 10, baselineMs: 1_800_000 };
		const tier = limits({ requestsPerMinute: 10_000 }, { acceleration });
		let rejection: Rejection | undefined;
		for (let i = 0; i < 100 && rejection === undefined; i++) {
			clock.advance(100);
			const decision = await stub.admit({ orgId, limits: tier, cost: cost() });
			if (!decision.admitted) rejection = decision;
		}
		if (rejection === undefined) throw new Error("a jump from nothing to 600 a minute was never limited");
		expect(rejection).toMatchObject({ limit: "acceleration", scope: "organization" });
		const wait = rejection.retryAfterMs ?? 0;
		expect(wait).toBeGreaterThan(0);
		clock.advance(wait - 1);
		expect((await stub.admit({ orgId, limits: tier, cost: cost() })).admitted).toBe(false);
		clock.advance(1);
		expect((await stub.admit({ orgId, limits: tier, cost: cost() })).admitted).toBe(true);
	});

	it("grants leases as far as every limit allows, and takes back what is returned", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		const stub = await usageObject(orgId, clock);
		const tier = limits({ requestsPerMinute: 10 });
		const none = { requests: 0, inputTokens: 0 };
		const usage = { inputTokens: 0, outputTokens: 0 };
		const lease = (want: number, returned = none) =>
			stub.lease({ orgId, limits: tier, need: cost(), want: { ...cost(), requests: want }, returned, usage, ttlMs: 5000 });
		expect(await lease(6)).toMatchObject({ admitted: true, units: { requests: 6 }, ttlMs: 5000 });
		expect(await lease(6)).toMatchObject({ admitted: true, units: { requests: 4 } });
		expect(await lease(1)).toMatchObject({ admitted: false, limit: "requests", retryAfterMs: 6000 });
		expect(await lease(3, { requests: 2, inputTokens: 0 })).toMatchObject({ admitted: true, units: { requests: 2 } });
	});
});
