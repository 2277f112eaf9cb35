import { describe, expect, it } from "vitest";
import {
	type BreakerPass,
	type BreakerTransition,
	CircuitBreaker,
	isOriginFailure,
} from "../../src/overload/circuit-breaker";
import { type BreakerConfig, OVERLOAD_DEFAULTS } from "../../src/overload/overload-config";
import { manualClock, T0 } from "./clock";

// These cases count failures alone (any volume, any rate); the rate rule has its own describe below.
const DEFAULTS: BreakerConfig = { ...OVERLOAD_DEFAULTS.breaker, minRequests: 1, failureRate: 0 };

function setup(config: Partial<BreakerConfig> = {}, probeTimeoutMs?: number) {
	const clock = manualClock();
	const events: BreakerTransition[] = [];
	const breaker = new CircuitBreaker(
		{ ...DEFAULTS, ...config },
		{ now: clock.now, onTransition: (event) => events.push(event), ...(probeTimeoutMs === undefined ? {} : { probeTimeoutMs }) },
	);
	return { clock, events, breaker };
}

function pass(breaker: CircuitBreaker): BreakerPass {
	const admission = breaker.admit();
	if (!admission.ok) throw new Error(`refused while ${admission.state}`);
	return admission;
}

function fail(breaker: CircuitBreaker, times = 1): void {
	for (let i = 0; i < times; i++) pass(breaker).done("failure");
}

/** Opens a default breaker at T0 + 0 and runs the cooldown out, leaving it half-open. */
function halfOpen(config: Partial<BreakerConfig> = {}, probeTimeoutMs?: number) {
	const ctx = setup(config, probeTimeoutMs);
	fail(ctx.breaker, config.failures ?? DEFAULTS.failures);
	ctx.clock.advance(config.cooldownMs ?? DEFAULTS.cooldownMs);
	expect(ctx.breaker.state).toBe("half-open");
	ctx.events.length = 0;
	return ctx;
}

function path(events: BreakerTransition[]): string[] {
	return events.map((event) => `${event.from}>${event.to}`);
}

describe("circuit breaker: closed", () => {
	it("admits every request and reports nothing while the origin is healthy", () => {
		const { breaker, events } = setup();
		for (let i = 0; i < 100; i++) pass(breaker).done("success");
		expect(breaker.state).toBe("closed");
		expect(events).toEqual([]);
	});

	it("stays closed at 4 failures within 10 s", () => {
		const { breaker, clock } = setup();
		for (let i = 0; i < 4; i++) {
			fail(breaker);
			clock.advance(2000);
		}
		expect(breaker.admit().ok).toBe(true);
	});

	it("does not let successes in between reset the failure count", () => {
		const { breaker } = setup();
		for (let i = 0; i < 5; i++) {
			pass(breaker).done("success");
			fail(breaker);
		}
		expect(breaker.state).toBe("open");
	});

	it("counts neither way a request cancelled before the origin answered", () => {
		const { breaker } = setup({ failures: 1 });
		pass(breaker).done("cancelled");
		expect(breaker.state).toBe("closed");
	});
});

describe("circuit breaker: opening", () => {
	it("opens after 5 failures within 10 s and refuses with the cooldown left as retry-after", () => {
		const { breaker, clock, events } = setup();
		for (let i = 0; i < 5; i++) {
			clock.at(i * 2000);
			fail(breaker);
		}
		expect(events).toEqual([{ from: "closed", to: "open", failures_in_window: 5, requests_in_window: 5, probes_ok: 0, probes_failed: 0, at: T0 + 8000 }]);
		expect(breaker.admit()).toEqual({ ok: false, state: "open", retryAfterMs: 5000 });
		clock.at(11_000);
		expect(breaker.admit()).toEqual({ ok: false, state: "open", retryAfterMs: 2000 });
	});

	it("opens on the first failure when failures is 1", () => {
		const { breaker } = setup({ failures: 1 });
		fail(breaker);
		expect(breaker.state).toBe("open");
	});

	it("is already in its new state when onTransition is called", () => {
		const seen: string[] = [];
		const clock = manualClock();
		const breaker: CircuitBreaker = new CircuitBreaker(
			{ ...DEFAULTS, failures: 1 },
			{ now: clock.now, onTransition: (event) => seen.push(`${event.to}=${breaker.state}`) },
		);
		fail(breaker);
		expect(seen).toEqual(["open=open"]);
	});
});

describe("circuit breaker: half-open", () => {
	it("turns half-open exactly when the cooldown ends, and reports it once", () => {
		const { breaker, clock, events } = setup();
		fail(breaker, 5);
		clock.advance(4999);
		expect(breaker.admit()).toMatchObject({ ok: false, state: "open", retryAfterMs: 1 });
		clock.advance(1);
		expect(breaker.state).toBe("half-open");
		expect(breaker.state).toBe("half-open");
		expect(path(events)).toEqual(["closed>open", "open>half-open"]);
		expect(events[1]).toEqual({ from: "open", to: "half-open", failures_in_window: 0, requests_in_window: 0, probes_ok: 0, probes_failed: 0, at: T0 + 5000 });
	});

	it("lets exactly 2 probes through at once and refuses the rest with retry-after 0", () => {
		const { breaker } = halfOpen();
		const probes = [pass(breaker), pass(breaker)];
		expect(probes.map((probe) => probe.probe)).toEqual([true, true]);
		expect(breaker.admit()).toEqual({ ok: false, state: "half-open", retryAfterMs: 0 });
		expect(breaker.admit()).toEqual({ ok: false, state: "half-open", retryAfterMs: 0 });
	});

	it("closes when every probe succeeds, reporting the probe counts once", () => {
		const { breaker, clock, events } = halfOpen();
		const [first, second] = [pass(breaker), pass(breaker)];
		first.done("success");
		expect(breaker.state).toBe("half-open");
		expect(breaker.admit().ok).toBe(false);
		clock.advance(300);
		second.done("success");
		expect(events).toEqual([{ from: "half-open", to: "closed", failures_in_window: 0, requests_in_window: 0, probes_ok: 2, probes_failed: 0, at: T0 + 5300 }]);
		const after = pass(breaker);
		expect(after.probe).toBe(false);
	});

	it("closes with an empty window: 4 new failures do not reopen it", () => {
		const { breaker } = halfOpen();
		pass(breaker).done("success");
		pass(breaker).done("success");
		fail(breaker, 4);
		expect(breaker.state).toBe("closed");
		fail(breaker);
		expect(breaker.state).toBe("open");
	});

	it("reopens for a fresh cooldown when a probe fails", () => {
		const { breaker, clock, events } = halfOpen();
		const [first, second] = [pass(breaker), pass(breaker)];
		first.done("success");
		clock.advance(1000);
		second.done("failure");
		expect(events).toEqual([{ from: "half-open", to: "open", failures_in_window: 0, requests_in_window: 0, probes_ok: 1, probes_failed: 1, at: T0 + 6000 }]);
		expect(breaker.admit()).toEqual({ ok: false, state: "open", retryAfterMs: 5000 });
	});

	it("frees a cancelled probe's slot for another probe", () => {
		const { breaker, events } = halfOpen();
		const [first] = [pass(breaker), pass(breaker)];
		first.done("cancelled");
		const replacement = pass(breaker);
		expect(replacement.probe).toBe(true);
		expect(breaker.admit().ok).toBe(false);
		expect(events).toEqual([]);
	});

	it("goes through the whole cycle with each transition reported exactly once", () => {
		const { breaker, clock, events } = setup({ probes: 1 });
		fail(breaker, 5);
		clock.advance(5000);
		pass(breaker).done("failure");
		clock.advance(5000);
		pass(breaker).done("success");
		for (let i = 0; i < 10; i++) void breaker.state;
		expect(path(events)).toEqual(["closed>open", "open>half-open", "half-open>open", "open>half-open", "half-open>closed"]);
		expect(events.map((event) => event.at - T0)).toEqual([0, 5000, 5000, 10_000, 10_000]);
	});
});

describe("circuit breaker: the failure window slides", () => {
	it("lets failures older than the window expire", () => {
		const { breaker, clock, events } = setup();
		for (const second of [0, 3, 6, 9, 10]) {
			clock.at(second * 1000);
			fail(breaker);
		}
		expect(breaker.state).toBe("closed");
		clock.at(11_000);
		fail(breaker);
		expect(breaker.state).toBe("open");
		expect(events[0]).toMatchObject({ failures_in_window: 5, at: T0 + 11_000 });
	});

	it("never opens on a steady trickle of failures slower than the window allows", () => {
		const { breaker, clock } = setup();
		for (let i = 0; i < 100; i++) {
			fail(breaker);
			clock.advance(2500);
		}
		expect(breaker.state).toBe("closed");
	});
});

describe("circuit breaker: stale and repeated outcomes", () => {
	it("ignores a slow success from before it opened: it is not a probe and cannot close it", () => {
		const { breaker, clock, events } = setup();
		const slow = pass(breaker);
		fail(breaker, 5);
		clock.advance(5000);
		expect(breaker.state).toBe("half-open");
		slow.done("success");
		expect(breaker.state).toBe("half-open");
		expect([pass(breaker).probe, pass(breaker).probe]).toEqual([true, true]);
		expect(path(events)).toEqual(["closed>open", "open>half-open"]);
	});

	it("ignores a failure from before it opened: the cooldown is not extended", () => {
		const { breaker, clock } = setup();
		const late = pass(breaker);
		fail(breaker, 5);
		clock.advance(1000);
		late.done("failure");
		expect(breaker.admit()).toMatchObject({ state: "open", retryAfterMs: 4000 });
	});

	it("ignores a failure from before it closed: it is not counted in the new window", () => {
		const { breaker, clock } = setup();
		const stale = pass(breaker);
		fail(breaker, 5);
		clock.advance(5000);
		pass(breaker).done("success");
		pass(breaker).done("success");
		expect(breaker.state).toBe("closed");
		stale.done("failure");
		fail(breaker, 4);
		expect(breaker.state).toBe("closed");
	});

	it("ignores the other probe's outcome once one probe has reopened it", () => {
		const { breaker, events } = halfOpen();
		const [first, second] = [pass(breaker), pass(breaker)];
		first.done("failure");
		second.done("success");
		expect(breaker.state).toBe("open");
		expect(path(events)).toEqual(["half-open>open"]);
	});

	it("counts an outcome reported twice only once", () => {
		const { breaker } = setup();
		fail(breaker, 4);
		const twice = pass(breaker);
		twice.done("failure");
		expect(breaker.state).toBe("open");
		const other = setup();
		fail(other.breaker, 3);
		const repeated = pass(other.breaker);
		repeated.done("failure");
		repeated.done("failure");
		expect(other.breaker.state).toBe("closed");
	});

	it("does not let a probe reported twice close the breaker on its own", () => {
		const { breaker } = halfOpen();
		const probe = pass(breaker);
		probe.done("success");
		probe.done("success");
		expect(breaker.state).toBe("half-open");
	});
});

describe("circuit breaker: edge cases", () => {
	it("counts a probe whose outcome never arrives as a timeout and reopens", () => {
		const { breaker, clock, events } = halfOpen({}, 30_000);
		const lost = pass(breaker);
		clock.advance(29_999);
		expect(breaker.state).toBe("half-open");
		clock.advance(1);
		expect(breaker.admit()).toEqual({ ok: false, state: "open", retryAfterMs: 5000 });
		expect(events).toEqual([{ from: "half-open", to: "open", failures_in_window: 0, requests_in_window: 0, probes_ok: 0, probes_failed: 1, at: T0 + 35_000 }]);
		lost.done("success");
		expect(breaker.state).toBe("open");
	});

	it("waits 10 minutes by default for a probe's outcome", () => {
		const { breaker, clock } = halfOpen();
		pass(breaker);
		clock.advance(599_999);
		expect(breaker.state).toBe("half-open");
		clock.advance(1);
		expect(breaker.state).toBe("open");
	});

	it("ignores a clock that runs backwards instead of stretching the cooldown", () => {
		const { breaker, clock } = setup();
		clock.at(8000);
		fail(breaker, 5);
		clock.at(0);
		expect(breaker.admit()).toMatchObject({ state: "open", retryAfterMs: 5000 });
		clock.at(13_000);
		expect(breaker.state).toBe("half-open");
	});

	it("keeps probes at 1 when so configured", () => {
		const { breaker } = halfOpen({ probes: 1 });
		pass(breaker);
		expect(breaker.admit()).toMatchObject({ ok: false, state: "half-open" });
	});
});

describe("what counts as an origin failure", () => {
	it.each([
		[500, true],
		[502, true],
		[503, true],
		[504, true],
		[529, true],
		[599, true],
		["network-error", true],
		["timeout", true],
		[200, false],
		[204, false],
		[304, false],
		[400, false],
		[404, false],
		[413, false],
		[429, false],
		[600, false],
	] as const)("%s → %s", (status, failure) => {
		expect(isOriginFailure(status)).toBe(failure);
	});
});

describe("circuit breaker: a failure rate over a minimum volume (the deployed default)", () => {
	const rated = () => setup({ failures: 5, minRequests: 20, failureRate: 0.5 });

	it("stays closed on a handful of failures, however close together, below the minimum volume", () => {
		const { breaker } = rated();
		fail(breaker, 19);
		expect(breaker.state).toBe("closed");
	});

	it("opens once at least 20 requests in the window had an outcome and half of them failed", () => {
		const { breaker, events } = rated();
		for (let i = 0; i < 10; i++) pass(breaker).done("success");
		fail(breaker, 9);
		expect(breaker.state).toBe("closed");
		fail(breaker, 1);
		expect(breaker.state).toBe("open");
		expect(events[0]).toMatchObject({ from: "closed", to: "open", failures_in_window: 10, requests_in_window: 20 });
	});

	it("stays closed when under half of a busy window failed", () => {
		const { breaker } = rated();
		for (let i = 0; i < 60; i++) pass(breaker).done("success");
		fail(breaker, 59);
		expect(breaker.state).toBe("closed");
		fail(breaker, 1);
		expect(breaker.state).toBe("open");
	});

	it("counts cancelled requests neither way", () => {
		const { breaker } = rated();
		for (let i = 0; i < 100; i++) pass(breaker).done("cancelled");
		fail(breaker, 19);
		expect(breaker.state).toBe("closed");
	});

	it("forgets outcomes older than the window", () => {
		const { breaker, clock } = rated();
		fail(breaker, 15);
		clock.advance(10_001);
		fail(breaker, 15);
		expect(breaker.state).toBe("closed");
	});
});
