import { describe, expect, it } from "vitest";
import { admissible, allowedRate, headroom, type MeterState, record, waitFor } from "../../src/limits/rates/acceleration";
import type { AccelerationConfig } from "../../src/limits/decisions";

const CONFIG: AccelerationConfig = { windowMs: 60_000, multiple: 3, floorPerMinute: 60, baselineMs: 30 * 60_000 };
const MINUTE = 60_000;
const T0 = 1_800_000_000_000;

interface Run {
	state: MeterState | undefined;
	now: number;
	admitted: number;
	rejected: number;
	firstRejection: number | undefined;
}

/** Sends requests evenly at `rate(minute)` per minute for `minutes`, on a controlled clock. */
function traffic(run: Run, minutes: number, rate: (minute: number) => number): Run {
	const start = run.now;
	const next = { ...run, admitted: 0, rejected: 0, firstRejection: undefined as number | undefined };
	while (next.now < start + minutes * MINUTE) {
		if (admissible(next.state, CONFIG, next.now)) {
			next.state = record(next.state, CONFIG, next.now, 1);
			next.admitted++;
		} else {
			next.rejected++;
			next.firstRejection ??= next.now - start;
		}
		next.now += Math.max(1, Math.round(MINUTE / rate((next.now - start) / MINUTE)));
	}
	return next;
}

const fresh = (): Run => ({ state: undefined, now: T0, admitted: 0, rejected: 0, firstRejection: undefined });
/** An organisation that has sent `rate` a minute for hours. */
const established = (rate: number): Run => ({ ...fresh(), state: { shortRate: rate, baselineRate: rate, at: T0 } });

describe("acceleration", () => {
	it("passes steady traffic under the floor from a standing start", () => {
		expect(traffic(fresh(), 180, () => 55).rejected).toBe(0);
	});

	it("passes steady heavy traffic", () => {
		const run = traffic(established(2000), 180, () => 2000);
		expect(run.rejected).toBe(0);
		expect(run.admitted).toBe(360_000);
	});

	it("passes a gradual ramp from nothing to 40 times the floor", () => {
		const start = traffic(fresh(), 20, () => 55);
		// About 5% more each minute: doubling every 14 minutes, 55 to 2200 in 76 minutes.
		const ramp = traffic(start, 76, (minute) => 55 * 1.05 ** minute);
		const after = traffic(ramp, 120, () => 2200);
		expect([start.rejected, ramp.rejected, after.rejected]).toEqual([0, 0, 0]);
	});

	it("limits a sudden jump within the first minute", () => {
		const jump = traffic(established(100), 1, () => 1000);
		expect(jump.rejected).toBeGreaterThan(0);
		// The short rate passes 3 × 100 about a quarter of the way into the window (1000 - 900e^-t = 300,
		// a little later as the baseline rises too).
		expect(jump.firstRejection).toBeLessThan(20_000);
		// Then it is held near `multiple` times the baseline, not the 1000 asked for.
		expect(jump.admitted).toBeLessThan(600);
	});

	it("lifts the limit as the baseline catches up", () => {
		let run = established(100);
		const admittedPerMinute: number[] = [];
		const rejectedPerMinute: number[] = [];
		for (let minute = 0; minute < 30; minute++) {
			run = traffic(run, 1, () => 1000);
			admittedPerMinute.push(run.admitted);
			rejectedPerMinute.push(run.rejected);
		}
		expect(rejectedPerMinute[0]).toBeGreaterThan(400);
		// Held near 3 × the baseline, which rises with what is admitted: more every minute...
		for (let minute = 2; minute < 14; minute++) {
			expect(admittedPerMinute[minute]).toBeGreaterThan(admittedPerMinute[minute - 1] ?? 0);
		}
		// ...until the whole 1000 a minute passes (here after about 15 minutes).
		expect(rejectedPerMinute.slice(20)).toEqual(Array(10).fill(0));
	});

	it("lets a quiet organisation start, up to the floor", () => {
		const start = traffic(fresh(), 1, () => 600);
		expect(start.admitted).toBeGreaterThanOrEqual(60);
		expect(start.admitted).toBeLessThan(120);
		expect(allowedRate(undefined, CONFIG, T0)).toBe(60);
	});

	it("computes the least wait after which a request passes, and it keeps passing", () => {
		let run = traffic(established(100), 1, () => 1000);
		let waited = 0;
		for (let i = 0; i < 200; i++) {
			run = traffic(run, 0.01 + (i % 7) * 0.05, () => 1000 + i * 37);
			const wait = waitFor(run.state, CONFIG, run.now);
			expect(wait === 0, `a wait of ${wait} ms at step ${i}`).toBe(admissible(run.state, CONFIG, run.now));
			if (wait === 0) continue;
			waited++;
			expect(admissible(run.state, CONFIG, run.now + wait - 1)).toBe(false);
			expect(admissible(run.state, CONFIG, run.now + wait)).toBe(true);
			expect(admissible(run.state, CONFIG, run.now + Math.ceil(wait / 1000) * 1000)).toBe(true);
		}
		expect(waited).toBeGreaterThan(50);
		expect(waitFor(undefined, CONFIG, T0)).toBe(0);
	});

	it("counts as headroom the requests it would admit one after another now, exactly from a standing start and never more", () => {
		const admittedNow = (state: MeterState | undefined, now: number) => {
			let count = 0;
			for (let current = state; admissible(current, CONFIG, now); count++) current = record(current, CONFIG, now, 1);
			return count;
		};
		const at = (shortRate: number, baselineRate: number): MeterState => ({ shortRate, baselineRate, at: T0 });
		expect([headroom(undefined, CONFIG, T0), admittedNow(undefined, T0)]).toEqual([61, 61]);
		expect([headroom(at(30, 0), CONFIG, T0), admittedNow(at(30, 0), T0)]).toEqual([31, 31]);
		expect([headroom(at(60, 0), CONFIG, T0), admittedNow(at(60, 0), T0)]).toEqual([1, 1]);
		expect([headroom(at(300, 100), CONFIG, T0), admittedNow(at(300, 100), T0)]).toEqual([1, 1]);
		expect([headroom(at(1000, 0), CONFIG, T0), admittedNow(at(1000, 0), T0)]).toEqual([0, 0]);
		// A baseline grows with each admission too, so counting ahead is a lower bound.
		for (const [short, baseline, later] of [[120, 100, 0], [300, 100, 30_000], [1000, 400, 5000]] as const) {
			const room = headroom(at(short, baseline), CONFIG, T0 + later);
			expect(room).toBeGreaterThan(100);
			expect(room).toBeLessThanOrEqual(admittedNow(at(short, baseline), T0 + later));
		}
	});

	it("makes a burst over an established baseline wait until its multiple allows it, sooner than the floor alone would", () => {
		// 600 a minute against a baseline of 100 (times 3: 300): the short rate halves in
		// ln 2 / (1/window - 1/baseline) ms while the baseline decays too; the floor alone needs ln 10 windows.
		const burst: MeterState = { shortRate: 600, baselineRate: 100, at: T0 };
		const wait = waitFor(burst, CONFIG, T0);
		const exact = Math.log(2) / (1 / CONFIG.windowMs - 1 / CONFIG.baselineMs);
		expect(wait).toBeGreaterThanOrEqual(Math.floor(exact));
		expect(wait).toBeLessThanOrEqual(Math.ceil(exact) + 1);
		expect(admissible(burst, CONFIG, T0 + wait)).toBe(true);
		expect(admissible(burst, CONFIG, T0 + wait - 1)).toBe(false);
		// With no baseline, the floor decides: ln 10 windows.
		const cold: MeterState = { shortRate: 600, baselineRate: 0, at: T0 };
		expect(waitFor(cold, CONFIG, T0)).toBe(Math.ceil(Math.log(10) * CONFIG.windowMs));
	});

	it("counts headroom in requests of the short window, whatever its length", () => {
		const half: AccelerationConfig = { ...CONFIG, windowMs: 30_000 };
		// Each request adds 2 a minute to a 30-second window's rate: 60 allows 31 from nothing.
		expect(headroom(undefined, half, T0)).toBe(31);
		let state: MeterState | undefined;
		let count = 0;
		for (; admissible(state, half, T0); count++) state = record(state, half, T0, 1);
		expect(count).toBe(31);
	});
});
