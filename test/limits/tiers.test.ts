import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { familyFor, parseTierConfig, resolveLimits } from "../../src/limits/rates/tiers";

// The tier table's parsing and resolution are tested in Node in test/pure/tiers.test.ts; this one needs the Worker's own bindings.
describe("tiers", () => {
	it("parses the tiers in the Worker's configuration", () => {
		const table = parseTierConfig(env);
		expect(resolveLimits(table, "org_tight").organization.requestsPerMinute).toBe(10);
		expect(resolveLimits(table, "org_demo").organization.requestsPerMinute).toBeGreaterThanOrEqual(1000);
		// The worked example: org_budget's daily budget, and Sonnet's own pool and price.
		expect(resolveLimits(table, "org_budget").budgets?.organization).toEqual({ day: 2_400_000, month: 1_000_000_000 });
		expect(resolveLimits(table, "org_budget", undefined, "sonnet").pool).toEqual({
			family: "sonnet",
			limits: { requestsPerMinute: 50, inputTokensPerMinute: 30_000, outputTokensPerMinute: 8000 },
		});
		expect(familyFor(table, "org_budget", "claude-sonnet-4-6")?.price).toEqual({ input: 3000, output: 15_000, cacheWrite: 3750, cacheRead: 300, batchFactor: 0.5 });
		expect(familyFor(table, "org_budget", "claude-3-haiku-20240307")).toMatchObject({ name: "haiku3", limits: undefined, countCacheReads: true });
	});
});
