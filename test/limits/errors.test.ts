import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { rejectionMessage, retryAfterSeconds } from "../../src/limits/client/rejection-messages";
import { LimiterUnavailableError, type Rejection } from "../../src/limits/decisions";
import { LimiterClient, type UsageNamespace, type UsageStub } from "../../src/limits/client/limiter-client";
import { client, fakeClock, limits, newOrg, tierTable, usageNamespace, usageObject } from "./helpers";

/** A namespace whose every stub answers with `behaviour` (the ids come from the real namespace). */
function failingNamespace(behaviour: () => Promise<never>): UsageNamespace & { calls: number } {
	const stub: UsageStub = { admit: behaviour, grow: behaviour, settle: behaviour, settleClaim: behaviour, holdForBatch: behaviour, lease: behaviour };
	const namespace = {
		calls: 0,
		idFromName: (name: string) => usageNamespace().idFromName(name),
		get: () => {
			namespace.calls++;
			return stub;
		},
	};
	return namespace;
}

async function unavailable(promise: Promise<unknown>): Promise<LimiterUnavailableError> {
	try {
		await promise;
	} catch (error) {
		if (error instanceof LimiterUnavailableError) return error;
		throw error;
	}
	throw new Error("expected a LimiterUnavailableError");
}

const never = () => new Promise<never>(() => {});

describe("limiter client: when the object fails", () => {
	it("gives up on an object that does not answer within the time bound", async () => {
		const limiter = new LimiterClient({ namespace: failingNamespace(never), tiers: tierTable(), timeoutMs: 20 });
		const error = await unavailable(limiter.admit({ orgId: "org_slow", inputTokens: 0 }));
		expect(error).toMatchObject({ kind: "timeout", orgId: "org_slow" });
		expect(error.message).toContain("did not answer within 20 ms");
	});

	it("reports an object that throws, keeping the cause", async () => {
		const cause = new Error("storage exploded");
		const limiter = new LimiterClient({ namespace: failingNamespace(() => Promise.reject(cause)), tiers: tierTable() });
		const error = await unavailable(limiter.admit({ orgId: "org_broken", inputTokens: 0 }));
		expect(error.kind).toBe("error");
		expect(error.cause).toBe(cause);
	});

	it("reports an overloaded object as overloaded", async () => {
		const overloaded = Object.assign(new Error("Durable Object is overloaded"), { overloaded: true });
		const limiter = new LimiterClient({ namespace: failingNamespace(() => Promise.reject(overloaded)), tiers: tierTable() });
		expect((await unavailable(limiter.admit({ orgId: "org_hot", inputTokens: 0 }))).kind).toBe("overloaded");
	});

	it("fails a settlement the same way", async () => {
		const limiter = new LimiterClient({ namespace: failingNamespace(never), tiers: tierTable(), timeoutMs: 20 });
		const reservation = { orgId: "org_slow", workspaceId: undefined, inputTokens: 10, outputTokens: 0, via: "object" as const };
		expect((await unavailable(limiter.settle(reservation, { inputTokens: 10, outputTokens: 5 }))).kind).toBe("timeout");
	});

	it("fails in lease mode when a slice cannot be had, and asks again on the next request", async () => {
		const namespace = failingNamespace(() => Promise.reject(new Error("down")));
		const limiter = new LimiterClient({ namespace, tiers: tierTable(), mode: "lease", waitUntil: () => {} });
		expect((await unavailable(limiter.admit({ orgId: "org_down", inputTokens: 0 }))).kind).toBe("error");
		await unavailable(limiter.admit({ orgId: "org_down", inputTokens: 0 }));
		expect(namespace.calls).toBe(2);
	});

	it("refuses a negative or non-numeric token count before calling the object", async () => {
		const namespace = failingNamespace(never);
		const limiter = new LimiterClient({ namespace, tiers: tierTable() });
		await expect(limiter.admit({ orgId: "org_a", inputTokens: -1 })).rejects.toThrow(RangeError);
		await expect(limiter.admit({ orgId: "org_a", inputTokens: Number.NaN })).rejects.toThrow(RangeError);
		expect(namespace.calls).toBe(0);
	});

	it("has the object refuse a cost that is not a whole number", async () => {
		const orgId = newOrg();
		const stub = await usageObject(orgId, fakeClock());
		// Called on the instance: over RPC the same error also reaches workerd's uncaught-error log.
		await runInDurableObject(stub, (instance) => {
			expect(() => instance.admit({ orgId, limits: limits(), cost: { requests: 1, inputTokens: 1.5, outputTokens: 0 } })).toThrow(
				"cost.inputTokens must be a whole number",
			);
			expect(() => instance.settle({ orgId, limits: limits(), inputTokens: Number.POSITIVE_INFINITY, outputTokens: 0 })).toThrow(RangeError);
		});
	});
});

describe("limiter client: remembered rejections", () => {
	it("refuses a limited organisation locally until its retry time, then asks the object again", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		await usageObject(orgId, clock);
		const limiter = client(tierTable({}, { TIERS: { tight: { requests_per_minute: 10, input_tokens_per_minute: 10_000, output_tokens_per_minute: 10_000 } }, ORG_TIERS: { [orgId]: "tight" } }), clock);
		for (let i = 0; i < 10; i++) expect((await limiter.admit({ orgId, inputTokens: 0 })).admitted).toBe(true);
		const first = await limiter.admit({ orgId, inputTokens: 0 });
		expect(first).toMatchObject({ admitted: false, source: "object", retryAfterMs: 6000 });
		clock.advance(2500);
		const noted = await limiter.admit({ orgId, inputTokens: 0 });
		expect(noted).toMatchObject({ admitted: false, source: "note", limit: "requests", retryAfterMs: 3500 });
		expect(limiter.stats.objectCalls).toBe(11);
		clock.advance(3500);
		expect(await limiter.admit({ orgId, inputTokens: 0 })).toMatchObject({ admitted: true, source: "object" });
		expect(limiter.stats.objectCalls).toBe(12);
	});

	it("still asks the object for a smaller request than the one refused for its tokens", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		await usageObject(orgId, clock);
		const limiter = client(tierTable({ input_tokens_per_minute: 1000 }), clock);
		expect((await limiter.admit({ orgId, inputTokens: 900 })).admitted).toBe(true);
		expect(await limiter.admit({ orgId, inputTokens: 500 })).toMatchObject({ admitted: false, limit: "input_tokens", source: "object" });
		expect(await limiter.admit({ orgId, inputTokens: 600 })).toMatchObject({ admitted: false, source: "note" });
		expect(await limiter.admit({ orgId, inputTokens: 50 })).toMatchObject({ admitted: true, source: "object" });
	});
});

describe("rejection messages", () => {
	const snapshot = { limit: 1, remaining: 0, resetAt: 0 };
	const rejection = (limit: Rejection["limit"], retryAfterMs: number | null = 1000): Rejection => ({
		admitted: false,
		limit,
		scope: "organization",
		allowedPerMinute: 50_000,
		retryAfterMs,
		snapshot: { requests: snapshot, inputTokens: snapshot, outputTokens: snapshot, tokens: snapshot },
		source: "object",
	});

	it("names the limit that was hit", () => {
		expect(rejectionMessage(rejection("requests"))).toContain("rate limit of 50,000 requests per minute");
		expect(rejectionMessage(rejection("input_tokens"))).toContain("50,000 input tokens per minute");
		expect(rejectionMessage(rejection("output_tokens"))).toContain("50,000 output tokens per minute");
		expect(rejectionMessage({ ...rejection("requests"), scope: "workspace" })).toContain("your workspace's rate limit");
	});

	it("tells an accelerating organisation to ramp up gradually", () => {
		expect(rejectionMessage(rejection("acceleration"))).toMatch(/^Your organization's usage rose sharply.*Ramp up usage gradually/);
	});

	it("says when a request can never fit", () => {
		expect(rejectionMessage(rejection("input_tokens", null))).toContain("alone exceed");
	});

	it("rounds retry-after up to whole seconds, at least one", () => {
		expect([retryAfterSeconds(0), retryAfterSeconds(1), retryAfterSeconds(1000), retryAfterSeconds(8572)]).toEqual([1, 1, 1, 9]);
	});
});
