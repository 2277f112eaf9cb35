import { describe, expect, it } from "vitest";
import type { Decision } from "../../src/limits/decisions";
import { client, fakeClock, limits, newOrg, tierTable, usageObject } from "./helpers";

const admittedCount = (decisions: readonly Decision[]) => decisions.filter((decision) => decision.admitted).length;

describe("concurrency", () => {
	it("admits exactly L of N concurrent requests through the object's stub", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		const stub = await usageObject(orgId, clock);
		const tier = limits({ requestsPerMinute: 17 });
		const cost = { requests: 1, inputTokens: 0, outputTokens: 0 };
		const decisions = await Promise.all(Array.from({ length: 200 }, () => stub.admit({ orgId, limits: tier, cost })));
		expect(admittedCount(decisions)).toBe(17);
	});

	it("admits exactly L of N concurrent requests through the client in exact mode", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		await usageObject(orgId, clock);
		const limiter = client(tierTable({ requests_per_minute: 17 }), clock);
		const decisions = await Promise.all(Array.from({ length: 200 }, () => limiter.admit({ orgId, inputTokens: 0 })));
		expect(admittedCount(decisions)).toBe(17);
	});

	it("admits exactly as many concurrent requests as the input tokens allow", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		await usageObject(orgId, clock);
		const limiter = client(tierTable({ input_tokens_per_minute: 1000 }), clock);
		const decisions = await Promise.all(Array.from({ length: 100 }, () => limiter.admit({ orgId, inputTokens: 99 })));
		expect(admittedCount(decisions)).toBe(10);
		const rejection = decisions.find((decision) => !decision.admitted);
		expect(rejection).toMatchObject({ limit: "input_tokens" });
	});

	it("admits exactly L of N concurrent requests in lease mode, from one isolate or several", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		await usageObject(orgId, clock);
		const tiers = tierTable({ requests_per_minute: 17 });
		const isolates = Array.from({ length: 4 }, () => client(tiers, clock, { mode: "lease", lease: { maxFraction: 0.25 } }));
		const decisions = await Promise.all(isolates.flatMap((limiter) => Array.from({ length: 100 }, () => limiter.admit({ orgId, inputTokens: 0 }))));
		await Promise.all(isolates.flatMap((limiter) => limiter.background));
		expect(admittedCount(decisions)).toBeLessThanOrEqual(17);
		// A renewal ahead may have left units in an isolate; spending them makes exactly 17, never more.
		const later: Decision[] = [];
		for (const limiter of isolates) for (let i = 0; i < 17; i++) later.push(await limiter.admit({ orgId, inputTokens: 0 }));
		expect(admittedCount(decisions) + admittedCount(later)).toBe(17);
	});

	it("admits exactly L of N concurrent requests in lease mode with one isolate", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		await usageObject(orgId, clock);
		const limiter = client(tierTable({ requests_per_minute: 17 }), clock, { mode: "lease" });
		const decisions = await Promise.all(Array.from({ length: 200 }, () => limiter.admit({ orgId, inputTokens: 0 })));
		await Promise.all(limiter.background);
		expect(admittedCount(decisions)).toBe(17);
	});
});
