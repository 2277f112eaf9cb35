import { describe, expect, it } from "vitest";
import type { LimitStatus, ResolvedLimits } from "../../src/limits/decisions";
import { checkedCost, checkedDelta, type Hit, moreRestrictive, samePool, specsFor, specsOfPools, worse } from "../../src/limits/rates/bucket-specs";
import { MAX_DEBT_MINUTES, MAX_PER_MINUTE } from "../../src/limits/rates/token-bucket";

const ORG = { requestsPerMinute: 100, inputTokensPerMinute: 20_000, outputTokensPerMinute: 4000 };
const OPUS = { requestsPerMinute: 5, inputTokensPerMinute: 500, outputTokensPerMinute: 50 };
const MAX_UNITS = MAX_PER_MINUTE * MAX_DEBT_MINUTES;

function resolved(extra: Partial<ResolvedLimits> = {}): ResolvedLimits {
	return { tier: "default", organization: ORG, workspace: undefined, acceleration: undefined, ...extra };
}

const hit = (wait: number | null, limit: Hit["limit"] = "requests"): Hit => ({ limit, scope: "organization", allowedPerMinute: 10, wait });
const status = (limit: number, remaining: number): LimitStatus => ({ limit, remaining, resetAt: 0 });

describe("the buckets a request touches", () => {
	it("are the organisation's three, sized by its limits, when the model has no pool of its own", () => {
		expect(specsFor(resolved())).toEqual([
			{ key: "org:requests", dimension: "requests", scope: "organization", perMinute: 100 },
			{ key: "org:input_tokens", dimension: "input_tokens", scope: "organization", perMinute: 20_000 },
			{ key: "org:output_tokens", dimension: "output_tokens", scope: "organization", perMinute: 4000 },
		]);
	});

	it("are the family's three instead of the organisation's when the model's family has a pool", () => {
		expect(specsFor(resolved({ pool: { family: "opus", limits: OPUS } }))).toEqual([
			{ key: "fam:opus:requests", dimension: "requests", scope: "organization", perMinute: 5, family: "opus" },
			{ key: "fam:opus:input_tokens", dimension: "input_tokens", scope: "organization", perMinute: 500, family: "opus" },
			{ key: "fam:opus:output_tokens", dimension: "output_tokens", scope: "organization", perMinute: 50, family: "opus" },
		]);
	});

	it("add a workspace's buckets only for the limits the workspace sets, whatever the family", () => {
		const workspace = { id: "wrk_a", limits: { inputTokensPerMinute: 700 } };
		const plain = specsFor(resolved({ workspace }));
		const pooled = specsFor(resolved({ workspace, pool: { family: "opus", limits: OPUS } }));
		const mine = { key: "ws:wrk_a:input_tokens", dimension: "input_tokens", scope: "workspace", perMinute: 700 };
		expect(plain.slice(3)).toEqual([mine]);
		expect(pooled.slice(3)).toEqual([mine]);
		expect(specsFor(resolved({ workspace: { id: "wrk_b", limits: { requestsPerMinute: 1, outputTokensPerMinute: 2 } } })).slice(3)).toEqual([
			{ key: "ws:wrk_b:requests", dimension: "requests", scope: "workspace", perMinute: 1 },
			{ key: "ws:wrk_b:output_tokens", dimension: "output_tokens", scope: "workspace", perMinute: 2 },
		]);
	});

	it("of several pools are listed once each, a shared workspace's included, first seen first", () => {
		const workspace = { id: "wrk_a", limits: { requestsPerMinute: 9 } };
		const keys = specsOfPools([resolved({ workspace }), resolved({ workspace, pool: { family: "opus", limits: OPUS } }), resolved({ workspace })]).map(
			(spec) => spec.key,
		);
		expect(keys).toEqual(["org:requests", "org:input_tokens", "org:output_tokens", "ws:wrk_a:requests", "fam:opus:requests", "fam:opus:input_tokens", "fam:opus:output_tokens"]);
		// A bucket named twice keeps the size it was first given.
		const sizes = specsOfPools([resolved(), resolved({ organization: { ...ORG, requestsPerMinute: 1 } })]).map((spec) => spec.perMinute);
		expect(sizes).toEqual([100, 20_000, 4000]);
	});

	it("name the same pool for two models of no pooled family, or of the same family, and not otherwise", () => {
		const opus = resolved({ pool: { family: "opus", limits: OPUS } });
		expect(samePool(resolved(), resolved({ tier: "other" }))).toBe(true);
		expect(samePool(opus, resolved({ pool: { family: "opus", limits: ORG } }))).toBe(true);
		expect(samePool(opus, resolved())).toBe(false);
		expect(samePool(resolved(), opus)).toBe(false);
		expect(samePool(opus, resolved({ pool: { family: "haiku", limits: OPUS } }))).toBe(false);
	});
});

describe("the hit that decides a retry", () => {
	it("is one that can never pass, else the longest wait, the earlier on a tie", () => {
		const first = hit(500, "requests");
		expect(worse(undefined, first)).toBe(first);
		expect(worse(first, hit(400))).toBe(first);
		expect(worse(first, hit(600))).toEqual(hit(600));
		const tie = hit(500, "input_tokens");
		expect(worse(first, tie)).toBe(first);
		const never = hit(null, "output_tokens");
		expect(worse(first, never)).toBe(never);
		expect(worse(never, hit(1_000_000))).toBe(never);
		expect(worse(never, hit(null, "requests"))).toBe(never);
	});
});

describe("the status the headers show", () => {
	it("is the one with fewer units remaining, and on a tie the smaller limit", () => {
		expect(moreRestrictive(status(100, 5), status(10, 6))).toEqual(status(100, 5));
		expect(moreRestrictive(status(10, 6), status(100, 5))).toEqual(status(100, 5));
		expect(moreRestrictive(status(100, 5), status(10, 5))).toEqual(status(10, 5));
		expect(moreRestrictive(status(10, 5), status(100, 5))).toEqual(status(10, 5));
		const same = status(10, 5);
		expect(moreRestrictive(same, status(10, 5))).toBe(same);
	});
});

describe("a cost and a correction from outside the object", () => {
	it("are accepted as whole numbers from 0 (or ±) to ten minutes of the largest limit", () => {
		const cost = { requests: 0, inputTokens: MAX_UNITS, outputTokens: 7 };
		expect(checkedCost(cost, "cost")).toBe(cost);
		expect(checkedDelta(-MAX_UNITS, "units")).toBe(-MAX_UNITS);
		expect(checkedDelta(MAX_UNITS, "units")).toBe(MAX_UNITS);
		expect(checkedDelta(0, "units")).toBe(0);
	});

	it.each([
		["a negative count", { requests: -1, inputTokens: 0, outputTokens: 0 }, "cost.requests must be a whole number from 0 to 100000000000, got -1"],
		["a fraction", { requests: 1, inputTokens: 0.5, outputTokens: 0 }, "cost.inputTokens must be a whole number from 0 to 100000000000, got 0.5"],
		["one unit too many", { requests: 1, inputTokens: 0, outputTokens: MAX_UNITS + 1 }, "cost.outputTokens must be a whole number from 0 to 100000000000, got 100000000001"],
		["NaN", { requests: Number.NaN, inputTokens: 0, outputTokens: 0 }, "cost.requests must be a whole number"],
	])("refuses %s with a RangeError naming the field", (_name, cost, message) => {
		expect(() => checkedCost(cost, "cost")).toThrow(RangeError);
		expect(() => checkedCost(cost, "cost")).toThrow(message);
	});

	it.each([
		["one unit too many", MAX_UNITS + 1, "units must be a whole number within ±100000000000, got 100000000001"],
		["one unit too few", -MAX_UNITS - 1, "units must be a whole number within ±100000000000, got -100000000001"],
		["a fraction", 1.5, "got 1.5"],
		["infinity", Number.POSITIVE_INFINITY, "got Infinity"],
	])("refuses a correction of %s with a RangeError", (_name, units, message) => {
		expect(() => checkedDelta(units, "units")).toThrow(RangeError);
		expect(() => checkedDelta(units, "units")).toThrow(message);
	});
});
