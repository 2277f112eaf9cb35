import { describe, expect, it } from "vitest";
import { SpendLedger } from "../../src/limits/spend/spend-ledger";
import { SpendStorage } from "./spend-storage";

const NOON = Date.UTC(2027, 0, 30, 12);
const NEXT_DAY = Date.UTC(2027, 0, 31);
const NEXT_MONTH = Date.UTC(2027, 1, 1);

function ledger(storage = new SpendStorage()): SpendLedger {
	const spend = new SpendLedger(storage.sql);
	spend.load();
	return spend;
}

const held = (amounts: Record<string, number>) => ({ nanos: 0, held: (scope: string) => amounts[scope] ?? 0 });
const claiming = (nanos: number, amounts: Record<string, number> = {}) => ({ nanos, held: (scope: string) => amounts[scope] ?? 0 });

describe("the spend ledger: what a request may spend", () => {
	it("admits while the spend is under the budget and the claim fits, the claim that reaches it exactly included", () => {
		const spend = ledger();
		spend.add([{ nanos: 600 }], undefined, NOON);
		const budgets = { organization: { day: 1000 } };
		expect(spend.check(budgets, undefined, undefined, NOON, claiming(300, { org: 100 }))).toBeUndefined();
		expect(spend.check(budgets, undefined, undefined, NOON, claiming(301, { org: 100 }))).toEqual({
			scope: "organization",
			period: "day",
			limitNanos: 1000,
			spentNanos: 600,
			resetAt: NEXT_DAY,
			heldNanos: 100,
			claimNanos: 301,
		});
	});

	it("refuses once the spend has reached the budget, without naming a claim", () => {
		const spend = ledger();
		spend.add([{ nanos: 1000 }], undefined, NOON);
		expect(spend.check({ organization: { day: 1000 } }, undefined, undefined, NOON)).toStrictEqual({
			scope: "organization",
			period: "day",
			limitNanos: 1000,
			spentNanos: 1000,
			resetAt: NEXT_DAY,
		});
		expect(spend.check({ organization: { day: 1001 } }, undefined, undefined, NOON)).toBeUndefined();
		expect(spend.check(undefined, undefined, undefined, NOON)).toBeUndefined();
	});

	it("counts a charge for the organisation, its workspace and its key, each against its own budget", () => {
		const spend = ledger();
		spend.add([{ workspaceId: "wrk_a", keyId: "key_a", nanos: 50 }], undefined, NOON);
		spend.add([{ keyId: "key_b", nanos: 20 }, { nanos: 0 }, { nanos: -5, keyId: "key_b" }], undefined, NOON);
		expect(spend.check({ key: { day: 50 } }, undefined, "key_a", NOON)).toMatchObject({ scope: "key", id: "key_a", spentNanos: 50 });
		expect(spend.check({ key: { day: 50 } }, undefined, "key_b", NOON)).toBeUndefined();
		expect(spend.check({ key: { day: 20 } }, undefined, "key_b", NOON)).toMatchObject({ scope: "key", id: "key_b", spentNanos: 20 });
		expect(spend.check({ workspace: { month: 50 } }, "wrk_a", undefined, NOON)).toMatchObject({ scope: "workspace", id: "wrk_a", period: "month" });
		expect(spend.check({ workspace: { month: 50 } }, "wrk_b", undefined, NOON)).toBeUndefined();
		expect(spend.check({ organization: { month: 70 } }, "wrk_b", "key_c", NOON)).toMatchObject({ scope: "organization", spentNanos: 70 });
		expect(spend.check({ organization: { month: 71 } }, "wrk_b", "key_c", NOON)).toBeUndefined();
	});

	it("weighs the money other claims hold in each scope against that scope's budget", () => {
		const spend = ledger();
		const budgets = { organization: { day: 1000 }, workspace: { day: 100 } };
		expect(spend.check(budgets, "wrk_a", undefined, NOON, claiming(1, { org: 0, "ws:wrk_a": 100 }))).toMatchObject({ scope: "workspace", heldNanos: 100, claimNanos: 1 });
		expect(spend.check(budgets, "wrk_a", undefined, NOON, claiming(1, { org: 1000, "ws:wrk_a": 0 }))).toMatchObject({ scope: "organization", heldNanos: 1000 });
		expect(spend.check(budgets, "wrk_a", undefined, NOON, claiming(1, { "ws:wrk_a": 99, "key:wrk_a": 1000 }))).toBeUndefined();
		expect(spend.check(budgets, "wrk_a", undefined, NOON, held({ org: 1000, "ws:wrk_a": 100 }))).toBeUndefined();
	});

	it("names, of several spent budgets, the one that resets last, and of those the widest scope", () => {
		const spend = ledger();
		spend.add([{ keyId: "key_a", nanos: 100 }], undefined, NOON);
		const hit = spend.check({ organization: { day: 10 }, key: { month: 10, day: 10 } }, undefined, "key_a", NOON);
		expect(hit).toMatchObject({ scope: "key", period: "month", resetAt: NEXT_MONTH });
		expect(spend.check({ key: { day: 10 }, organization: { month: 10, day: 10 } }, undefined, "key_a", NOON)).toMatchObject({
			scope: "organization",
			period: "month",
		});
		expect(spend.check({ key: { day: 10 }, organization: { day: 10 } }, undefined, "key_a", NOON)).toMatchObject({ scope: "organization", period: "day" });
	});

	it("reads a period that has turned as nothing spent, and starts the new one from the next charge alone", () => {
		const spend = ledger();
		spend.add([{ nanos: 900 }], undefined, NOON);
		const budgets = { organization: { day: 1000, month: 5000 } };
		expect(spend.check(budgets, undefined, undefined, NEXT_DAY - 1, claiming(101))).toMatchObject({ period: "day", spentNanos: 900 });
		expect(spend.check(budgets, undefined, undefined, NEXT_DAY, claiming(1000))).toBeUndefined();
		spend.add([{ nanos: 10 }], budgets, NEXT_DAY);
		expect(spend.report(NEXT_DAY).map(({ period, window, spentNanos }) => ({ period, window, spentNanos }))).toEqual([
			{ period: "day", window: "2027-01-31", spentNanos: 10 },
			{ period: "month", window: "2027-01", spentNanos: 910 },
		]);
	});

	it("records nothing for a charge of nothing", () => {
		const spend = ledger();
		spend.add([{ nanos: 0, keyId: "key_a" }, { nanos: -1 }], { organization: { day: 5 } }, NOON);
		expect(spend.size).toBe(0);
		expect(spend.report(NOON)).toEqual([]);
	});

	it("stops counting at the largest exact integer rather than losing precision", () => {
		const spend = ledger();
		spend.add([{ nanos: Number.MAX_SAFE_INTEGER - 1 }], undefined, NOON);
		spend.add([{ nanos: 5 }], undefined, NOON);
		expect(spend.report(NOON).map((line) => line.spentNanos)).toEqual([Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER]);
	});
});

describe("the spend ledger: what it reports and keeps", () => {
	it("reports each scope's spend in the current periods with the budget its last charge carried", () => {
		const spend = ledger();
		spend.add([{ workspaceId: "wrk_a", keyId: "key_a", nanos: 7 }], { organization: { day: 100 }, workspace: { month: 50 }, key: { day: 9 } }, NOON);
		expect(spend.report(NOON)).toStrictEqual([
			{ scope: "organization", period: "day", window: "2027-01-30", spentNanos: 7, budgetNanos: 100, resetAt: NEXT_DAY },
			{ scope: "organization", period: "month", window: "2027-01", spentNanos: 7, budgetNanos: 0, resetAt: NEXT_MONTH },
			{ scope: "workspace", id: "wrk_a", period: "day", window: "2027-01-30", spentNanos: 7, budgetNanos: 0, resetAt: NEXT_DAY },
			{ scope: "workspace", id: "wrk_a", period: "month", window: "2027-01", spentNanos: 7, budgetNanos: 50, resetAt: NEXT_MONTH },
			{ scope: "key", id: "key_a", period: "day", window: "2027-01-30", spentNanos: 7, budgetNanos: 9, resetAt: NEXT_DAY },
			{ scope: "key", id: "key_a", period: "month", window: "2027-01", spentNanos: 7, budgetNanos: 0, resetAt: NEXT_MONTH },
		]);
		expect(spend.report(NEXT_MONTH)).toEqual([]);
	});

	it("keeps an ID with a colon or a bar in it whole", () => {
		const spend = ledger();
		spend.add([{ keyId: "key:x|y", nanos: 3 }], undefined, NOON);
		expect(spend.report(NOON).filter((line) => line.scope === "key").map((line) => line.id)).toEqual(["key:x|y", "key:x|y"]);
	});

	it("is the same after a restart: every charge is written through and read back", () => {
		const storage = new SpendStorage();
		const before = ledger(storage);
		before.add([{ workspaceId: "wrk_a", keyId: "key_a", nanos: 40 }], { workspace: { day: 60 } }, NOON);
		before.add([{ workspaceId: "wrk_a", nanos: 2 }], { workspace: { day: 60 } }, NOON);
		const after = ledger(storage);
		expect(after.size).toBe(6);
		expect(after.report(NOON)).toEqual(before.report(NOON));
		expect(after.check({ workspace: { day: 42 } }, "wrk_a", undefined, NOON)).toMatchObject({ spentNanos: 42 });
	});

	it("deletes the rows of turned periods from memory and storage, and answers when the next current one turns", () => {
		const storage = new SpendStorage();
		const spend = ledger(storage);
		spend.add([{ keyId: "key_a", nanos: 5 }], undefined, NOON);
		expect(spend.prune(NOON)).toBe(NEXT_DAY);
		expect(spend.size).toBe(4);
		expect(spend.prune(NEXT_DAY)).toBe(NEXT_MONTH);
		expect(spend.size).toBe(2);
		expect([...storage.rows.keys()].sort()).toEqual(["key:key_a|month", "org|month"]);
		expect(ledger(storage).size).toBe(2);
		expect(spend.prune(NEXT_MONTH)).toBeUndefined();
		expect(spend.size).toBe(0);
		expect(storage.rows.size).toBe(0);
	});

	it("forgets what it holds in memory when cleared", () => {
		const spend = ledger();
		spend.add([{ nanos: 5 }], undefined, NOON);
		spend.clear();
		expect(spend.size).toBe(0);
		expect(spend.report(NOON)).toEqual([]);
	});
});

describe("the spend ledger: budgets spent, for isolates to refuse locally", () => {
	it("lists the organisation's and keys' against the tier, and a workspace's against its own or its last charge's", () => {
		const spend = ledger();
		spend.add([{ workspaceId: "wrk_other", nanos: 30 }], { workspace: { day: 30 } }, NOON);
		spend.add([{ workspaceId: "wrk_mine", keyId: "key_a", nanos: 20 }], { workspace: { day: 100 } }, NOON);
		const tier = { organization: { month: 50 }, workspace: { day: 20 }, key: { day: 21 } };
		expect(spend.exhausted(tier, "wrk_mine", NOON)).toStrictEqual([
			{ scope: "organization", period: "month", limitNanos: 50, spentNanos: 50, resetAt: NEXT_MONTH },
			{ scope: "workspace", id: "wrk_other", period: "day", limitNanos: 30, spentNanos: 30, resetAt: NEXT_DAY },
			{ scope: "workspace", id: "wrk_mine", period: "day", limitNanos: 20, spentNanos: 20, resetAt: NEXT_DAY },
		]);
		expect(spend.exhausted({ key: { day: 20 } }, undefined, NOON)).toEqual([
			{ scope: "workspace", id: "wrk_other", period: "day", limitNanos: 30, spentNanos: 30, resetAt: NEXT_DAY },
			{ scope: "key", id: "key_a", period: "day", limitNanos: 20, spentNanos: 20, resetAt: NEXT_DAY },
		]);
		// With no budgets from the tier, only a workspace's own (as its last charge carried it) can be spent.
		expect(spend.exhausted(undefined, undefined, NOON)).toEqual([{ scope: "workspace", id: "wrk_other", period: "day", limitNanos: 30, spentNanos: 30, resetAt: NEXT_DAY }]);
		expect(spend.exhausted(undefined, undefined, NEXT_MONTH)).toEqual([]);
	});

	it("lists at most a thousand", () => {
		const spend = ledger();
		spend.add(
			Array.from({ length: 1001 }, (_, i) => ({ keyId: `key_${i}`, nanos: 1 })),
			undefined,
			NOON,
		);
		expect(spend.exhausted({ key: { day: 1 } }, undefined, NOON)).toHaveLength(1000);
	});
});
