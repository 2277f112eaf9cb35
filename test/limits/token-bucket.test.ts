import { describe, expect, it } from "vitest";
import { available, levelAt, MAX_DEBT_MINUTES, MAX_PER_MINUTE, MINUTE_MS, status, take, waitFor } from "../../src/limits/rates/token-bucket";

/** A small deterministic generator (mulberry32), so failures reproduce. */
function random(seed: number): () => number {
	let a = seed;
	return () => {
		a = (a + 0x6d2b79f5) | 0;
		let t = Math.imul(a ^ (a >>> 15), 1 | a);
		t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

const T0 = 1_800_000_000_000;

describe("token bucket", () => {
	it("starts full and refills continuously up to its capacity", () => {
		expect(available(undefined, 10, T0)).toBe(10);
		const empty = take(undefined, 10, 10, T0);
		expect(available(empty, 10, T0)).toBe(0);
		expect(available(empty, 10, T0 + 5999)).toBe(0);
		expect(available(empty, 10, T0 + 6000)).toBe(1);
		expect(available(empty, 10, T0 + 30_000)).toBe(5);
		expect(available(empty, 10, T0 + 10 * MINUTE_MS)).toBe(10);
	});

	it("waits exactly as long as the missing units take to refill, never a ms less", () => {
		const next = random(1);
		for (let i = 0; i < 2000; i++) {
			const perMinute = 1 + Math.floor(next() * 100_000);
			const spent = Math.floor(next() * perMinute);
			const state = take(undefined, perMinute, spent, T0);
			const units = Math.floor(next() * perMinute) + 1;
			const wait = waitFor(state, perMinute, units, T0);
			if (wait === null) throw new Error("units within capacity must be reachable");
			expect(levelAt(state, perMinute, T0 + wait)).toBeGreaterThanOrEqual(units * MINUTE_MS);
			if (wait > 0) expect(levelAt(state, perMinute, T0 + wait - 1)).toBeLessThan(units * MINUTE_MS);
		}
	});

	it("waits 0 ms, never a negative time, when more than the units asked for are there", () => {
		expect(waitFor(undefined, 100, 1, T0)).toBe(0);
		expect(waitFor(take(undefined, 100, 40, T0), 100, 60, T0)).toBe(0);
		expect(waitFor(take(undefined, 100, 40, T0), 100, 0, T0)).toBe(0);
	});

	it("stays exact at the largest limit", () => {
		const state = take(undefined, MAX_PER_MINUTE, MAX_PER_MINUTE, T0);
		expect(waitFor(state, MAX_PER_MINUTE, 1, T0)).toBe(1);
		expect(waitFor(state, MAX_PER_MINUTE, MAX_PER_MINUTE, T0)).toBe(MINUTE_MS);
		expect(available(state, MAX_PER_MINUTE, T0 + 1)).toBe(Math.floor(MAX_PER_MINUTE / MINUTE_MS));
	});

	it("reports remaining and the time it is full again", () => {
		const state = take(undefined, 60, 30, T0);
		expect(status(state, 60, T0)).toEqual({ limit: 60, remaining: 30, resetAt: T0 + 30_000 });
		expect(status(undefined, 60, T0)).toEqual({ limit: 60, remaining: 60, resetAt: T0 });
	});

	it("goes into debt on usage after the fact, down to a floor", () => {
		const owed = take(undefined, 100, 250, T0);
		expect(status(owed, 100, T0).remaining).toBe(0);
		expect(waitFor(owed, 100, 0, T0)).toBe(90_000);
		const runaway = take(undefined, 100, 1_000_000, T0);
		expect(waitFor(runaway, 100, 0, T0)).toBe(MAX_DEBT_MINUTES * MINUTE_MS);
	});

	it("never credits above capacity", () => {
		expect(take(undefined, 100, -500, T0).level).toBe(100 * MINUTE_MS);
	});

	it("ignores a clock that runs backwards", () => {
		const state = take(undefined, 60, 60, T0);
		expect(levelAt(state, 60, T0 - 10_000)).toBe(0);
		expect(take(state, 60, 0, T0 - 10_000).at).toBe(T0);
	});

	it("clamps a bucket whose limit was lowered", () => {
		const state = take(undefined, 100, 10, T0);
		expect(available(state, 50, T0)).toBe(50);
	});
});

describe("token bucket: requests it can never admit", () => {
	it("answers null for more units than the capacity", () => {
		expect(waitFor(undefined, 100, 101, T0)).toBeNull();
		expect(waitFor(undefined, 100, 100, T0)).toBe(0);
	});
});
