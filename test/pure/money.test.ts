import { describe, expect, it } from "vitest";
import { batchCostOf, costOf, formatUsd, parseBudgets, parsePeriodBudgets, parsePrice, usd, windowOf } from "../../src/limits/spend/money";

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

describe("money in dollars", () => {
	it("shows an amount owed with a minus sign before the dollar sign", () => {
		expect([formatUsd(-2_400_000), formatUsd(-5_000_000_000)]).toEqual(["-$0.0024", "-$5.00"]);
	});

	it("gives a log line the amount in dollars", () => {
		expect([usd(2_400_000), usd(5_000_000_000), usd(0)]).toEqual([0.0024, 5, 0]);
	});
});

describe("prices and budgets in the configuration", () => {
	it("reads a price per million tokens of each kind as nano-dollars a token, batches at half by default", () => {
		expect(parsePrice({ input: 3, output: 15, cache_write: 3.75, cache_read: 0.3 }, "P")).toEqual({ input: 3000, output: 15_000, cacheWrite: 3750, cacheRead: 300, batchFactor: 0.5 });
		expect(parsePrice({ input: 0.001, output: 1_000_000, cache_write: 0, cache_read: 0.123, batch_factor: 1 }, "P")).toEqual({
			input: 1,
			output: 1_000_000_000,
			cacheWrite: 0,
			cacheRead: 123,
			batchFactor: 1,
		});
	});

	it.each([
		["an unknown kind", { input: 1, output: 1, cache_write: 1, cache_read: 1, cache_hit: 1 }, "P.cache_hit: unknown field"],
		["a missing input price", { output: 1, cache_write: 1, cache_read: 1 }, "P.input: must be a number from 0"],
		["a missing output price", { input: 1, cache_write: 1, cache_read: 1 }, "P.output: must be a number from 0"],
		["a missing cache write price", { input: 1, output: 1, cache_read: 1 }, "P.cache_write: must be a number from 0"],
		["a price over a million dollars", { input: 1_000_000.001, output: 1, cache_write: 1, cache_read: 1 }, "P.input: must be a number from 0 to 1000000"],
		["a fourth decimal", { input: 1, output: 1, cache_write: 1, cache_read: 0.0001 }, "P.cache_read: must have at most three decimals (USD per million tokens), got 0.0001"],
		["a batch factor of 0", { input: 1, output: 1, cache_write: 1, cache_read: 1, batch_factor: 0 }, "P.batch_factor: must be a number"],
	])("refuses a price with %s, naming the field", (_name, raw, message) => {
		expect(() => parsePrice(raw, "P")).toThrow(message);
	});

	it("reads budgets in dollars per UTC day and month as nano-dollars, by scope", () => {
		expect(parseBudgets({ organization: { day: 5, month: 100 }, key: { month: 0.000000001 } }, "B")).toEqual({
			organization: { day: 5_000_000_000, month: 100_000_000_000 },
			key: { month: 1 },
		});
		expect(parsePeriodBudgets({ month: 1_000_000 }, "B")).toEqual({ month: 1_000_000_000_000_000 });
	});

	it.each([
		["no scope", {}, "B: must set at least one of organization, workspace, key"],
		["an unknown scope", { team: { day: 1 } }, "B.team: unknown field"],
		["a budget over a million dollars", { key: { day: 1_000_001 } }, "B.key.day: must be a number"],
		["a period without an amount", { workspace: {} }, "B.workspace: must set day, month or both (USD per UTC period)"],
	])("refuses budgets with %s, naming the field", (_name, raw, message) => {
		expect(() => parseBudgets(raw, "B")).toThrow(message);
	});
});
