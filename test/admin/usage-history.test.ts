import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ConsoleUplink } from "../../src/limits/console/console-link";
import type { HistoryEntry } from "../../src/limits/console/usage-history";
import { client, fakeClock, limits, newOrg, tierTable, usageObject } from "../limits/helpers";

const MINUTE = 60_000;
const DAY = 86_400_000;
const one = { requests: 1, inputTokens: 0, outputTokens: 0 };

/** A request with the console's fields, as an isolate's limiter client sends it. */
function carrying<T extends object>(request: T, uplink: ConsoleUplink): T {
	return { ...request, console: uplink } as T;
}

describe("usage history in the usage object", () => {
	it("counts the admissions and refusals it decides, by reason, per minute and per day", async () => {
		const orgId = newOrg();
		const clock = fakeClock(Date.UTC(2026, 10, 30, 12, 0, 30));
		const stub = await usageObject(orgId, clock);
		const tier = limits({ requestsPerMinute: 3 });
		for (let i = 0; i < 5; i++) await stub.admit({ orgId, limits: tier, cost: one });
		clock.advance(MINUTE);
		await stub.admit({ orgId, limits: tier, cost: one });
		const report = await stub.consoleReport({ pools: [tier], minutes: 3, days: 2 });
		const minutes = report.history.minutes;
		expect(minutes.start).toBe(Date.UTC(2026, 10, 30, 11, 59));
		expect(minutes.admitted).toEqual([0, 3, 1]);
		expect(minutes.refused).toEqual({ requests: [0, 2, 0] });
		expect(report.history.days.admitted).toEqual([0, 4]);
		expect(report.history.days.refused).toEqual({ requests: [0, 2] });
		expect(report.pools[0]?.snapshot.requests).toMatchObject({ limit: 3 });
	});

	it("adds the tally an isolate sends with a call: tokens, spend, its own refusals and the last refusal's request ID", async () => {
		const orgId = newOrg();
		const clock = fakeClock(Date.UTC(2026, 10, 30, 12, 0, 0));
		const stub = await usageObject(orgId, clock);
		const tier = limits();
		const tally: HistoryEntry[] = [
			{
				minute: clock.now,
				admitted: 4,
				refused: { share: 2, "requests:opus": 1 },
				inputTokens: 1200,
				cacheReadTokens: 800,
				cacheWriteTokens: 100,
				outputTokens: 300,
				spendNanos: 2_500_000,
				lastRefusal: { requestId: "req_0123456789abcdefghijklmn", reason: "share", at: clock.now + 5 },
			},
		];
		await stub.settle(carrying({ orgId, limits: tier, inputTokens: 0, outputTokens: 0 }, { tally }));
		const report = await stub.consoleReport({ pools: [tier], minutes: 1, days: 1 });
		expect(report.history.minutes).toMatchObject({
			admitted: [4],
			refused: { share: [2], "requests:opus": [1] },
			inputTokens: [1200],
			cacheReadTokens: [800],
			cacheWriteTokens: [100],
			outputTokens: [300],
			spendNanos: [2_500_000],
		});
		expect(report.history.lastRefusal).toEqual({ requestId: "req_0123456789abcdefghijklmn", reason: "share", at: clock.now + 5 });
	});

	it("has written what a call brought by the time it answers: several tallies of one minute and its own count survive a restart, summed, the latest refusal kept", async () => {
		const orgId = newOrg();
		const clock = fakeClock(Date.UTC(2026, 10, 30, 12, 0, 0));
		const stub = await usageObject(orgId, clock);
		const tier = limits();
		const tally: HistoryEntry[] = [
			{ minute: clock.now, admitted: 2, inputTokens: 100, refused: { share: 1 }, lastRefusal: { requestId: "req_later00000000000000000", reason: "share", at: clock.now + 9 } },
			{ minute: clock.now, admitted: 3, inputTokens: 50, refused: { share: 2 }, lastRefusal: { requestId: "req_earlier0000000000000000", reason: "share", at: clock.now + 1 } },
		];
		await stub.admit(carrying({ orgId, limits: tier, cost: one }, { tally }));
		await abortAllDurableObjects();
		const again = await usageObject(orgId, clock);
		const report = await again.consoleReport({ pools: [tier], minutes: 1, days: 1 });
		// 2 + 3 from the tally, and the admission the object decided itself.
		expect(report.history.minutes).toMatchObject({ admitted: [6], inputTokens: [150], refused: { share: [3] } });
		expect(report.history.lastRefusal).toMatchObject({ requestId: "req_later00000000000000000" });
	});

	it("hears of lease-mode admissions, decided in the isolate, with the isolate's next call", async () => {
		const orgId = newOrg();
		const clock = fakeClock(Date.UTC(2026, 10, 30, 12, 0, 0));
		const stub = await usageObject(orgId, clock);
		const limiter = client(tierTable({ requests_per_minute: 600 }), clock, { mode: "lease", lease: { ttlMs: 5000 } });
		for (let i = 0; i < 6; i++) expect((await limiter.admit({ orgId, inputTokens: 0 })).admitted).toBe(true);
		await Promise.all(limiter.background);
		clock.advance(6000);
		// The slice has expired: this admission renews it, and the renewal carries the tally.
		expect((await limiter.admit({ orgId, inputTokens: 0 })).admitted).toBe(true);
		await Promise.all(limiter.background);
		const report = await stub.consoleReport({ pools: [limits({ requestsPerMinute: 600 })], minutes: 1, days: 1 });
		expect(report.history.minutes.admitted).toEqual([6]);
		expect(report.history.minutes.refused).toEqual({});
	});

	it("stores nothing of a malformed tally: negative or fractional counts, unknown reasons, bad request IDs", async () => {
		const orgId = newOrg();
		const clock = fakeClock(Date.UTC(2026, 10, 30, 12, 0, 0));
		const stub = await usageObject(orgId, clock);
		const tier = limits();
		const tally = [
			{ minute: clock.now, admitted: -5, inputTokens: 1.5, refused: { "<script>": 3, requests: -1 }, lastRefusal: { requestId: "sk-not-a-request-id", reason: "requests", at: clock.now } },
		] as HistoryEntry[];
		await stub.settle(carrying({ orgId, limits: tier, inputTokens: 0, outputTokens: 0 }, { tally }));
		const report = await stub.consoleReport({ pools: [tier], minutes: 1, days: 1 });
		expect(report.history.minutes.admitted).toEqual([0]);
		expect(report.history.minutes.inputTokens).toEqual([0]);
		expect(report.history.minutes.refused).toEqual({});
		expect(report.history.lastRefusal).toBeNull();
	});

	it("keeps minutes for 24 hours and days for 90, pruned by the object's alarm, then deletes its storage", async () => {
		const orgId = newOrg();
		const clock = fakeClock(Date.UTC(2026, 10, 30, 12, 0, 0));
		const stub = await usageObject(orgId, clock);
		const tier = limits();
		await stub.admit({ orgId, limits: tier, cost: one });
		clock.advance(24 * 60 * MINUTE - 1);
		await runDurableObjectAlarm(stub);
		let report = await stub.consoleReport({ pools: [tier], minutes: 1440, days: 90 });
		expect(report.history.minutes.admitted.reduce((a, b) => a + b, 0)).toBe(1);
		clock.advance(1);
		await runDurableObjectAlarm(stub);
		report = await stub.consoleReport({ pools: [tier], minutes: 1440, days: 90 });
		expect(report.history.minutes.admitted.reduce((a, b) => a + b, 0)).toBe(0);
		expect(report.history.days.admitted.reduce((a, b) => a + b, 0)).toBe(1);
		const minuteRows = await runInDurableObject(stub, (_instance, state) => [...state.storage.sql.exec("SELECT at FROM history WHERE span = 'm'")].length);
		expect(minuteRows).toBe(0);
		clock.advance(90 * DAY);
		await runDurableObjectAlarm(stub);
		// Nothing is left of the organisation: no history, no buckets, no tables.
		const tables = await runInDurableObject(stub, (_instance, state) =>
			[...state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\'")].map((row) => row.name),
		);
		expect(tables).toEqual([]);
	});
});
