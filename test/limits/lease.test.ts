import { describe, expect, it } from "vitest";
import type { Decision } from "../../src/limits/decisions";
import { client, fakeClock, limits, newOrg, tierTable, usageObject } from "./helpers";

describe("lease mode", () => {
	it("makes fewer than 0.1 object calls per request for a hot organisation", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		await usageObject(orgId, clock);
		const limiter = client(tierTable({ requests_per_minute: 100_000, input_tokens_per_minute: 100_000_000 }), clock, { mode: "lease" });
		for (let burst = 0; burst < 100; burst++) {
			const decisions = await Promise.all(Array.from({ length: 50 }, () => limiter.admit({ orgId, inputTokens: 200 })));
			expect(decisions.filter((decision) => !decision.admitted)).toEqual([]);
			clock.advance(10);
		}
		await Promise.all(limiter.background);
		expect(limiter.stats.admits).toBe(5000);
		expect(limiter.stats.objectCalls / limiter.stats.admits).toBeLessThan(0.1);
	});

	it("claims each request's max_tokens from the lease: concurrent requests cannot pass the output limit", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		await usageObject(orgId, clock);
		const limiter = client(tierTable({ requests_per_minute: 1000, output_tokens_per_minute: 1000 }), clock, { mode: "lease", lease: { maxFraction: 1 } });
		const decisions = await Promise.all(Array.from({ length: 6 }, () => limiter.admit({ orgId, inputTokens: 0, outputTokens: 400 })));
		expect(decisions.filter((decision) => decision.admitted)).toHaveLength(2);
		expect(decisions.find((decision) => !decision.admitted)).toMatchObject({ limit: "output_tokens" });
		await Promise.all(limiter.background);
	});

	it("asks for the next slice in the background before the current one runs out", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		await usageObject(orgId, clock);
		const limiter = client(tierTable({ requests_per_minute: 100_000 }), clock, { mode: "lease" });
		for (let i = 0; i < 300; i++) await limiter.admit({ orgId, inputTokens: 0 });
		expect(limiter.background.length).toBeGreaterThan(0);
		await Promise.all(limiter.background);
		const calls = limiter.stats.objectCalls;
		// The slice renewed ahead serves the next requests without a call in their path.
		await limiter.admit({ orgId, inputTokens: 0 });
		expect(limiter.stats.objectCalls).toBe(calls);
	});

	it("credits the unspent part of an expired slice back to the organisation", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		await usageObject(orgId, clock);
		const limiter = client(tierTable({ requests_per_minute: 100 }), clock, { mode: "lease", lease: { ttlMs: 1000, maxFraction: 0.5 } });
		let last: Decision | undefined;
		for (let i = 0; i < 10; i++) last = await limiter.admit({ orgId, inputTokens: 0 });
		await Promise.all(limiter.background);
		expect(last?.snapshot.requests.remaining).toBe(90);
		const stub = await usageObject(orgId, clock);
		const peek = await stub.admit({ orgId, limits: limits({ requestsPerMinute: 100 }), cost: { requests: 0, inputTokens: 0, outputTokens: 0 } });
		// The isolate holds granted units it has not spent.
		expect(peek.snapshot.requests.remaining).toBeLessThan(90);
		clock.advance(1000);
		const after = await limiter.admit({ orgId, inputTokens: 0 });
		// 100 - 11 admitted + 1 refilled in the second: nothing is lost with the expired slice.
		expect(after.snapshot.requests.remaining).toBe(90);
	});

	it("bounds the overshoot of several isolates by the rate times the lease time", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		await usageObject(orgId, clock);
		const perMinute = 600;
		const ttlMs = 5000;
		const tiers = tierTable({ requests_per_minute: perMinute });
		const isolates = Array.from({ length: 4 }, () => client(tiers, clock, { mode: "lease", lease: { ttlMs } }));
		const step = 250;
		const admittedPerStep: number[] = [];
		// Each isolate is asked 12 requests a second, almost five times what the whole limit allows.
		for (let t = 0; t < 180_000; t += step) {
			const decisions = await Promise.all(isolates.flatMap((limiter) => [1, 2, 3].map(() => limiter.admit({ orgId, inputTokens: 0 }))));
			admittedPerStep.push(decisions.filter((decision) => decision.admitted).length);
			clock.advance(step);
		}
		await Promise.all(isolates.flatMap((limiter) => limiter.background));
		const total = admittedPerStep.reduce((sum, n) => sum + n, 0);
		// From a full bucket, an exact limiter admits at most the capacity plus the refill.
		expect(total).toBeLessThanOrEqual(perMinute + perMinute * 3 + (perMinute * ttlMs) / 60_000);
		// Once the bucket is drained, any minute admits at most a minute's refill plus rate × ttl.
		const perWindow = 60_000 / step;
		let busiest = 0;
		for (let first = perWindow; first + perWindow <= admittedPerStep.length; first++) {
			busiest = Math.max(busiest, admittedPerStep.slice(first, first + perWindow).reduce((sum, n) => sum + n, 0));
		}
		expect(busiest).toBeLessThanOrEqual(perMinute + (perMinute * ttlMs) / 60_000);
		expect(busiest).toBeGreaterThan(perMinute * 0.9);
	}, 20_000);

	it("batches actual usage and sends it with the next call, or once it is a lease time old", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		const stub = await usageObject(orgId, clock);
		const limiter = client(tierTable({ output_tokens_per_minute: 100_000 }), clock, { mode: "lease", lease: { ttlMs: 2000 } });
		const first = await limiter.admit({ orgId, inputTokens: 0 });
		if (!first.admitted) throw new Error("expected an admission");
		const calls = limiter.stats.objectCalls;
		await limiter.settle(first.reservation, { inputTokens: 0, outputTokens: 700 });
		expect(limiter.stats.objectCalls).toBe(calls);
		clock.advance(2000);
		await limiter.settle(first.reservation, { inputTokens: 0, outputTokens: 300 });
		expect(limiter.stats.objectCalls).toBe(calls + 1);
		const view = await stub.admit({ orgId, limits: limits({ outputTokensPerMinute: 100_000 }), cost: { requests: 0, inputTokens: 0, outputTokens: 0 } });
		expect(view.snapshot.outputTokens.remaining).toBe(99_000);
	});
});
