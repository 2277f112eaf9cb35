import { describe, expect, it } from "vitest";
import { BoundedMap } from "../../src/lib/bounded-map";
import type { Decision, Reservation } from "../../src/limits/decisions";
import { client, fakeClock, limits, newOrg, tierTable, usageObject } from "./helpers";

/** A flush timer the test fires by hand: every wait asked for is recorded, and ends on `fire()`. */
function manualTimer() {
	const waits: number[] = [];
	let release: () => void = () => undefined;
	let fired = new Promise<void>((resolve) => {
		release = resolve;
	});
	return {
		waits,
		sleep: (ms: number) => {
			waits.push(ms);
			return fired;
		},
		fire: () => {
			release();
			fired = Promise.resolve();
		},
	};
}

function admitted(decision: Decision): Reservation {
	if (!decision.admitted) throw new Error(`expected an admission, got ${decision.limit}`);
	return decision.reservation;
}

describe("BoundedMap", () => {
	it("tells its owner of each entry dropped for the bound, with its value, and of nothing else", () => {
		const dropped: [string, number][] = [];
		const map = new BoundedMap<string, number>(2, { onEvict: (key, value) => dropped.push([key, value]) });
		map.set("a", 1).set("b", 2);
		map.delete("b");
		map.set("c", 3).set("d", 4);
		expect(dropped).toEqual([["a", 1]]);
		expect([...map.keys()]).toEqual(["c", "d"]);
	});

	it("drops the oldest silently when no one asked to hear of it", () => {
		const map = new BoundedMap<string, number>(1);
		map.set("a", 1).set("b", 2);
		expect([...map.entries()]).toEqual([["b", 2]]);
	});
});

describe("lease mode: no usage is lost", () => {
	it("brings a thousand settled requests to the usage object within the flush bound", async () => {
		const orgId = newOrg();
		const clock = fakeClock();
		const stub = await usageObject(orgId, clock);
		const flushMs = 250;
		const timer = manualTimer();
		const perMinute = { requests_per_minute: 100_000, output_tokens_per_minute: 10_000_000 };
		const limiter = client(tierTable(perMinute), clock, { mode: "lease", lease: { flushMs, sleep: timer.sleep } });
		for (let i = 0; i < 1000; i++) {
			const reservation = admitted(await limiter.admit({ orgId, inputTokens: 0 }));
			await limiter.settle(reservation, { inputTokens: 0, outputTokens: 7 });
		}
		const view = () => stub.admit({ orgId, limits: limits({ requestsPerMinute: 100_000, outputTokensPerMinute: 10_000_000 }), cost: { requests: 0, inputTokens: 0, outputTokens: 0 } });
		// No batch was large enough to go at once, and no call came after the last ones.
		expect((await view()).snapshot.outputTokens.remaining).toBeGreaterThan(10_000_000 - 7000);
		// Every flush waits at most the bound; then the whole batch is at the object.
		expect(timer.waits.length).toBeGreaterThan(0);
		expect(timer.waits.every((ms) => ms <= flushMs)).toBe(true);
		timer.fire();
		await Promise.all(limiter.background);
		expect((await view()).snapshot.outputTokens.remaining).toBe(10_000_000 - 7000);
	});

	it("sends a scope's batched usage, and gives back its unspent slice, when the scope is dropped", async () => {
		const clock = fakeClock();
		const [a, b, c] = [newOrg(), newOrg(), newOrg()];
		const stub = await usageObject(a, clock);
		for (const other of [b, c]) await usageObject(other, clock);
		const timer = manualTimer();
		const tiers = tierTable({ requests_per_minute: 1000, output_tokens_per_minute: 1_000_000 });
		const limiter = client(tiers, clock, { mode: "lease", lease: { maxScopes: 2, sleep: timer.sleep } });
		admitted(await limiter.admit({ orgId: a, inputTokens: 0 }));
		// Slices that go fast are doubled: the second grant leaves a unit unspent in the isolate.
		const reservation = admitted(await limiter.admit({ orgId: a, inputTokens: 0 }));
		await limiter.settle(reservation, { inputTokens: 0, outputTokens: 500 });
		const view = () => stub.admit({ orgId: a, limits: limits({ requestsPerMinute: 1000, outputTokensPerMinute: 1_000_000 }), cost: { requests: 0, inputTokens: 0, outputTokens: 0 } });
		const before = (await view()).snapshot;
		expect(before.outputTokens.remaining).toBe(1_000_000);
		expect(before.requests.remaining).toBe(997);
		// Two more organisations push `a` out of the isolate's table of two; its flush timer never fired.
		admitted(await limiter.admit({ orgId: b, inputTokens: 0 }));
		const queued = limiter.background.length;
		admitted(await limiter.admit({ orgId: c, inputTokens: 0 }));
		await Promise.all(limiter.background.slice(queued));
		const after = (await view()).snapshot;
		expect(after.outputTokens.remaining).toBe(1_000_000 - 500);
		expect(after.requests.remaining).toBe(998);
		timer.fire();
		await Promise.all(limiter.background);
	});
});
