import { describe, expect, it } from "vitest";
import { CircuitBreaker } from "../../src/overload/circuit-breaker";
import { OVERLOAD_DEFAULTS } from "../../src/overload/overload-config";
import { manualClock, T0 } from "../overload/clock";

const CONFIG = { ...OVERLOAD_DEFAULTS.breaker, failures: 2, minRequests: 2, failureRate: 0.5, cooldownMs: 5000, probes: 1 };

function outcome(breaker: CircuitBreaker, result: "success" | "failure"): void {
	const pass = breaker.admit();
	if (!pass.ok) throw new Error("refused");
	pass.done(result);
}

describe("what the health view reads of one origin's breaker", () => {
	it("counts the recent window, and says when an open breaker turns half-open", () => {
		const clock = manualClock();
		const breaker = new CircuitBreaker(CONFIG, { now: clock.now });
		expect(breaker.recent()).toEqual({ requests: 0, failures: 0 });
		outcome(breaker, "success");
		outcome(breaker, "failure");
		expect(breaker.recent()).toEqual({ requests: 2, failures: 1 });
		expect(breaker.halfOpenAt).toBeUndefined();
		clock.advance(100);
		outcome(breaker, "failure");
		expect(breaker.state).toBe("open");
		expect(breaker.halfOpenAt).toBe(T0 + 100 + 5000);
		// The window that opened it stays visible while it is open.
		expect(breaker.recent()).toEqual({ requests: 3, failures: 2 });
	});

	it("peeks without taking a half-open breaker's probe place", () => {
		const clock = manualClock();
		const breaker = new CircuitBreaker(CONFIG, { now: clock.now });
		outcome(breaker, "failure");
		outcome(breaker, "failure");
		expect(breaker.peek()).toEqual({ admits: false, retryAfterMs: 5000 });
		clock.advance(5000);
		expect(breaker.peek()).toEqual({ admits: true, retryAfterMs: 0 });
		expect(breaker.peek().admits).toBe(true);
		const probe = breaker.admit();
		expect(probe.ok && probe.probe).toBe(true);
		expect(breaker.peek()).toEqual({ admits: false, retryAfterMs: 0 });
	});
});
