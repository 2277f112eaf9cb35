import { describe, expect, it } from "vitest";
import { batchCostOf, costOf, formatUsd, windowOf } from "../../src/limits/spend/money";

describe("money arithmetic", () => {
	it("prices tokens by kind, in nano-dollars, exactly", () => {
		// $3, $15, $3.75 and $0.30 per million tokens.
		const price = { input: 3000, output: 15_000, cacheWrite: 3750, cacheRead: 300, batchFactor: 0.5 };
		expect(costOf(price, { input: 9, output: 12, cacheWrite: 0, cacheRead: 0 })).toBe(207_000);
		expect(costOf(price, { input: 1, output: 0, cacheWrite: 1000, cacheRead: 100_000 })).toBe(3000 + 3_750_000 + 30_000_000);
		// A batched request pays the batch factor of it, rounded up to a whole nano-dollar.
		expect(batchCostOf(price, { input: 9, output: 12, cacheWrite: 0, cacheRead: 0 })).toBe(103_500);
		expect(batchCostOf({ ...price, batchFactor: 0.3 }, { input: 1, output: 0, cacheWrite: 0, cacheRead: 0 })).toBe(900);
	});

	it("names the UTC day and month of a moment and when each turns", () => {
		const now = Date.UTC(2027, 0, 31, 23, 59, 59, 999);
		expect(windowOf("day", now)).toEqual({ id: "2027-01-31", resetAt: Date.UTC(2027, 1, 1) });
		expect(windowOf("month", now)).toEqual({ id: "2027-01", resetAt: Date.UTC(2027, 1, 1) });
		expect(windowOf("month", Date.UTC(2027, 11, 5))).toEqual({ id: "2027-12", resetAt: Date.UTC(2028, 0, 1) });
	});

	it("shows dollars with cents and every further decimal the amount has", () => {
		expect([formatUsd(5_000_000_000), formatUsd(2_400_000), formatUsd(207_000), formatUsd(0)]).toEqual(["$5.00", "$0.0024", "$0.000207", "$0.00"]);
	});
});
