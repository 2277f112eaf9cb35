import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Decision, ResolvedLimits } from "../../src/limits/decisions";
import { fakeClock, limits, newOrg, usageObject } from "./helpers";

const cost = (inputTokens = 0, outputTokens = 0, requests = 1) => ({ requests, inputTokens, outputTokens });
const NANOS_PER_USD = 1_000_000_000;

/** A pool of a family, with its own limits, on top of `limits()`. */
function pool(family: string, perMinute: { requestsPerMinute: number; inputTokensPerMinute: number; outputTokensPerMinute: number }, budgets?: ResolvedLimits["budgets"]): ResolvedLimits {
	return { ...limits(), pool: { family, limits: perMinute }, budgets };
}

function withBudget(dayUsd: number, base: ResolvedLimits = limits()): ResolvedLimits {
	return { ...base, budgets: { organization: { day: dayUsd * NANOS_PER_USD } } };
}

function admitted(decision: Decision) {
	if (!decision.admitted) throw new Error(`expected an admission, got ${decision.limit}`);
	return decision;
}

const remaining = async (stub: Awaited<ReturnType<typeof usageObject>>, orgId: string, of: ResolvedLimits) =>
	(await stub.admit({ orgId, limits: of, cost: cost(0, 0, 0) })).snapshot;

describe("claims in the usage object: happy paths", () => {
	it("holds a claim's units and money until it is settled, then replaces them with what was used", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		const stub = await usageObject(orgId, clock);
		const tier = withBudget(1, limits({ inputTokensPerMinute: 10_000, outputTokensPerMinute: 10_000 }));
		const decision = admitted(await stub.admit({ orgId, limits: tier, cost: cost(1000, 2000), claim: { id: "c1", nanos: 300_000_000 } }));
		expect(decision.reservation.claimId).toBe("c1");
		expect(await stub.claimsReport()).toMatchObject({ outstanding: 1, held: { requests: 1, inputTokens: 1000, outputTokens: 2000, nanos: 300_000_000 }, settled: 0 });
		const held = await remaining(stub, orgId, tier);
		expect([held.inputTokens.remaining, held.outputTokens.remaining]).toEqual([9000, 8000]);
		const settled = await stub.settleClaim({ orgId, claimId: "c1", limits: tier, used: cost(400, 100), spend: [{ nanos: 5_000_000 }] });
		expect(settled.settled).toBe(true);
		const after = await remaining(stub, orgId, tier);
		expect([after.inputTokens.remaining, after.outputTokens.remaining]).toEqual([9600, 9900]);
		expect(await stub.claimsReport()).toMatchObject({ outstanding: 0, held: { nanos: 0 }, settled: 1, settledNanos: 5_000_000 });
		const spent = (await stub.report()).find((line) => line.scope === "organization" && line.period === "day");
		expect(spent?.spentNanos).toBe(5_000_000);
	});

	it("grows a claim as a body arrives, and refuses the growth that would pass the limit without changing anything", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		const stub = await usageObject(orgId, clock);
		const tier = limits({ inputTokensPerMinute: 1000 });
		admitted(await stub.admit({ orgId, limits: tier, cost: cost(0), claim: { id: "a", nanos: 0 } }));
		admitted(await stub.admit({ orgId, limits: tier, cost: cost(0), claim: { id: "b", nanos: 0 } }));
		expect((await stub.grow({ orgId, claimId: "a", cost: cost(600, 0, 0), nanos: 0 })).admitted).toBe(true);
		// Two uploads share one allowance: b cannot take what a holds.
		const refused = await stub.grow({ orgId, claimId: "b", cost: cost(600, 0, 0), nanos: 0 });
		expect(refused).toMatchObject({ admitted: false, limit: "input_tokens" });
		expect((await stub.grow({ orgId, claimId: "b", cost: cost(400, 0, 0), nanos: 0 })).admitted).toBe(true);
		expect(await stub.claimsReport()).toMatchObject({ outstanding: 2, held: { inputTokens: 1000 } });
	});
});

describe("claims in the usage object: money", () => {
	it("refuses a claim that would pass a budget with what other claims hold, and names both amounts", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		const stub = await usageObject(orgId, clock);
		const tier = withBudget(0.01);
		admitted(await stub.admit({ orgId, limits: tier, cost: cost(), claim: { id: "first", nanos: 6_000_000 } }));
		const refused = await stub.admit({ orgId, limits: tier, cost: cost(), claim: { id: "second", nanos: 6_000_000 } });
		expect(refused).toMatchObject({ admitted: false, limit: "spend", budget: { spentNanos: 0, heldNanos: 6_000_000, claimNanos: 6_000_000, limitNanos: 10_000_000 } });
		// Settled below its claim, the first leaves room for the second.
		await stub.settleClaim({ orgId, claimId: "first", limits: tier, used: cost(), spend: [{ nanos: 1_000_000 }] });
		admitted(await stub.admit({ orgId, limits: tier, cost: cost(), claim: { id: "second", nanos: 6_000_000 } }));
	});

	it("refuses a growth whose money would pass the budget", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		const stub = await usageObject(orgId, clock);
		const tier = withBudget(0.01);
		admitted(await stub.admit({ orgId, limits: tier, cost: cost(), claim: { id: "g", nanos: 9_000_000 } }));
		expect(await stub.grow({ orgId, claimId: "g", cost: cost(10, 0, 0), nanos: 2_000_000 })).toMatchObject({ admitted: false, limit: "spend" });
		expect((await stub.grow({ orgId, claimId: "g", cost: cost(10, 0, 0), nanos: 1_000_000 })).admitted).toBe(true);
	});
});

describe("claims in the usage object: pools", () => {
	const OPUS = { requestsPerMinute: 2, inputTokensPerMinute: 10_000, outputTokensPerMinute: 10_000 };
	const HAIKU = { requestsPerMinute: 5, inputTokensPerMinute: 10_000, outputTokensPerMinute: 10_000 };

	it("claims a request of unknown model in every pool, and gives the others back when its model is known", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		const stub = await usageObject(orgId, clock);
		const org = limits({ requestsPerMinute: 100 });
		const opus = pool("opus", OPUS);
		const haiku = pool("haiku", HAIKU);
		admitted(await stub.admit({ orgId, limits: org, cost: cost(100), claim: { id: "u", nanos: 0, pools: [opus, haiku] } }));
		expect((await remaining(stub, orgId, opus)).requests.remaining).toBe(1);
		expect((await remaining(stub, orgId, haiku)).requests.remaining).toBe(4);
		expect((await stub.grow({ orgId, claimId: "u", cost: cost(0, 50, 0), nanos: 0, pool: { limits: haiku } })).admitted).toBe(true);
		expect((await remaining(stub, orgId, opus)).requests.remaining).toBe(2);
		expect((await remaining(stub, orgId, org)).requests.remaining).toBe(100);
		expect((await remaining(stub, orgId, haiku)).outputTokens.remaining).toBe(10_000 - 50);
		await stub.settleClaim({ orgId, claimId: "u", limits: haiku, used: cost(80, 20) });
		const settled = await remaining(stub, orgId, haiku);
		expect([settled.requests.remaining, settled.inputTokens.remaining, settled.outputTokens.remaining]).toEqual([4, 10_000 - 80, 10_000 - 20]);
	});

	it("refuses a request of unknown model when any pool it could land in is full", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		const stub = await usageObject(orgId, clock);
		const org = limits({ requestsPerMinute: 100 });
		const opus = pool("opus", OPUS);
		for (let i = 0; i < 2; i++) admitted(await stub.admit({ orgId, limits: opus, cost: cost() }));
		const refused = await stub.admit({ orgId, limits: org, cost: cost(), claim: { id: "x", nanos: 0, pools: [opus, pool("haiku", HAIKU)] } });
		expect(refused).toMatchObject({ admitted: false, limit: "requests", family: "opus" });
	});

	it("moves a claim to the pool its body finally names: the pool it leaves keeps what it admitted, the new one must take it all", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		const stub = await usageObject(orgId, clock);
		const opus = pool("opus", OPUS);
		const haiku = pool("haiku", HAIKU);
		admitted(await stub.admit({ orgId, limits: haiku, cost: cost(9000, 10), claim: { id: "m", nanos: 0 } }));
		for (let i = 0; i < 2; i++) admitted(await stub.admit({ orgId, limits: opus, cost: cost() }));
		// Opus is full: the move is refused, and nothing changed.
		expect(await stub.grow({ orgId, claimId: "m", cost: cost(0, 0, 0), nanos: 0, pool: { limits: opus } })).toMatchObject({ admitted: false, family: "opus" });
		clock.advance(30_000);
		expect((await stub.grow({ orgId, claimId: "m", cost: cost(0, 0, 0), nanos: 0, pool: { limits: opus } })).admitted).toBe(true);
		await stub.settleClaim({ orgId, claimId: "m", limits: opus, used: cost(100, 10) });
		// Haiku keeps the 9000 input tokens it admitted (1000 left, plus 30 s of refill); Opus took the request and settled to its usage.
		expect((await remaining(stub, orgId, haiku)).inputTokens.remaining).toBe(6000);
		const o = await remaining(stub, orgId, opus);
		expect([o.requests.remaining, o.inputTokens.remaining]).toEqual([0, 10_000 - 100]);
	});

	it("lands usage the origin reports for another pool there, and the admitting pool keeps its claim", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		const stub = await usageObject(orgId, clock);
		const opus = pool("opus", OPUS);
		const haiku = pool("haiku", HAIKU);
		admitted(await stub.admit({ orgId, limits: haiku, cost: cost(100, 10), claim: { id: "r", nanos: 0 } }));
		await stub.settleClaim({ orgId, claimId: "r", limits: opus, used: cost(5, 3) });
		const h = await remaining(stub, orgId, haiku);
		expect([h.requests.remaining, h.inputTokens.remaining, h.outputTokens.remaining]).toEqual([4, 10_000 - 100, 10_000 - 10]);
		const o = await remaining(stub, orgId, opus);
		expect([o.requests.remaining, o.inputTokens.remaining, o.outputTokens.remaining]).toEqual([1, 10_000 - 5, 10_000 - 3]);
	});
});

describe("claims in the usage object: exactly once", () => {
	it("settles a claim once: a second settlement changes nothing and says so", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		const stub = await usageObject(orgId, clock);
		const tier = limits({ inputTokensPerMinute: 10_000 });
		admitted(await stub.admit({ orgId, limits: tier, cost: cost(100), claim: { id: "once", nanos: 10 } }));
		expect((await stub.settleClaim({ orgId, claimId: "once", limits: tier, used: cost(10), spend: [{ nanos: 7 }] })).settled).toBe(true);
		expect((await stub.settleClaim({ orgId, claimId: "once", limits: tier, used: cost(9000), spend: [{ nanos: 7 }] })).settled).toBe(false);
		expect((await remaining(stub, orgId, tier)).inputTokens.remaining).toBe(10_000 - 10);
		expect(await stub.claimsReport()).toMatchObject({ outstanding: 0, settled: 1, settledNanos: 7 });
	});

	it("settles as charged a claim whose isolate never settled it, once it expires", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		const stub = await usageObject(orgId, clock);
		const tier = withBudget(1, limits({ inputTokensPerMinute: 10_000 }));
		admitted(await stub.admit({ orgId, limits: tier, cost: cost(100), claim: { id: "lost", nanos: 2_000 } }));
		clock.advance(60 * 60_000);
		expect(await stub.claimsReport()).toMatchObject({ outstanding: 0, settled: 1, settledNanos: 2_000 });
		expect((await stub.report()).find((line) => line.scope === "organization" && line.period === "day")?.spentNanos).toBe(2_000);
	});

	it("keeps a claim through a restart, and the alarm never deletes the storage of a claim outstanding", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		const stub = await usageObject(orgId, clock);
		const tier = limits();
		admitted(await stub.admit({ orgId, limits: tier, cost: cost(), claim: { id: "kept", nanos: 0 } }));
		clock.advance(20 * 60_000);
		await runDurableObjectAlarm(stub);
		await runInDurableObject(stub, async (_instance, state) => {
			const rows = state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM claims").one();
			expect(rows.n).toBe(1);
		});
		expect(await stub.claimsReport()).toMatchObject({ outstanding: 1 });
	});
});

describe("claims in the usage object: batches", () => {
	it("holds a created batch's claim apart from requests in flight, against the budget, until its results settle it once", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		const stub = await usageObject(orgId, clock);
		const tier = withBudget(0.01);
		admitted(await stub.admit({ orgId, limits: tier, cost: cost(10, 1000), claim: { id: "create", nanos: 8_000_000 } }));
		expect(await stub.holdForBatch({ orgId, claimId: "create", batchId: "msgbatch_1" })).toEqual({ held: true });
		expect(await stub.claimsReport()).toMatchObject({ outstanding: 0, batches: { held: 1, nanos: 8_000_000 } });
		// The batch's money is still held: a claim that would pass the budget with it is refused.
		expect(await stub.admit({ orgId, limits: tier, cost: cost(), claim: { id: "next", nanos: 3_000_000 } })).toMatchObject({ admitted: false, limit: "spend" });
		expect((await stub.settleClaim({ orgId, claimId: "batch:msgbatch_1", limits: tier, used: cost(10, 400), spend: [{ nanos: 2_000_000 }] })).settled).toBe(true);
		expect((await stub.settleClaim({ orgId, claimId: "batch:msgbatch_1", limits: tier, used: cost(10, 400), spend: [{ nanos: 2_000_000 }] })).settled).toBe(false);
		expect(await stub.claimsReport()).toMatchObject({ outstanding: 0, batches: { held: 0, nanos: 0 }, settled: 1, settledNanos: 2_000_000 });
		admitted(await stub.admit({ orgId, limits: tier, cost: cost(), claim: { id: "next", nanos: 3_000_000 } }));
	});
});

describe("claims in the usage object: bad input", () => {
	it("refuses to grow a claim it does not hold, and a claim id that is not short printable text", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		const stub = await usageObject(orgId, clock);
		// Called in the object, as RPC would: a throw there is the caller's error.
		await runInDurableObject(stub, (instance) => {
			expect(() => instance.grow({ orgId, claimId: "nope", cost: cost(1, 0, 0), nanos: 0 })).toThrow(/no claim/);
			expect(() => instance.admit({ orgId, limits: limits(), cost: cost(), claim: { id: "", nanos: 0 } })).toThrow(/claim.id/);
			expect(() => instance.admit({ orgId, limits: limits(), cost: cost(), claim: { id: "ok", nanos: -1 } })).toThrow(/nano-dollars/);
		});
		expect(await stub.claimsReport()).toMatchObject({ outstanding: 0 });
	});
});
