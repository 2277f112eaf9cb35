import { GuardError } from "../errors/guard-error";
import type { RequestState } from "../lib/request-state";
import { type BreakerOutcome, type BreakerPass, type BreakerRefusal, CircuitBreaker } from "./circuit-breaker";
import { InFlightGate } from "./in-flight";
import type { OverloadConfig } from "./overload-config";

/** One isolate's overload state for one configuration: the in-flight gate and a breaker per origin. */
export class Overload {
	readonly config: OverloadConfig;
	readonly gate: InFlightGate;
	readonly #breakers = new Map<string, CircuitBreaker>();

	constructor(config: OverloadConfig) {
		this.config = config;
		this.gate = new InFlightGate(config);
	}

	/** The breaker of one origin (its base URL, or the service binding's name). */
	breakerFor(origin: string): CircuitBreaker {
		let breaker = this.#breakers.get(origin);
		if (!breaker) {
			breaker = new CircuitBreaker(this.config.breaker, {
				// Once per state change, with its counts: what an operator needs to see an origin fail.
				onTransition: (event) => console.log({ message: "origin circuit breaker", origin, ...event }),
				probeTimeoutMs: Math.max(this.config.breaker.cooldownMs, 600_000),
			});
			this.#breakers.set(origin, breaker);
		}
		return breaker;
	}
}

/** An admitted request's hold on the origin's capacity. Every path must end in {@link release}. */
export interface Admitted {
	/** Counts the request against its organisation's share; past it, throws `429`. */
	claimOrg(org: string): void;
	/** What the origin's answer says of its health (at most once; later calls are ignored). */
	reached(outcome: BreakerOutcome): void;
	/** Frees the slot; an outcome not yet reported counts as `cancelled`. Idempotent. */
	release(): void;
}

/**
 * Admits a request to an origin before anything about it is read (no key lookup, no body byte):
 * `529 overloaded_error` when the isolate or the route's group is full or the origin's breaker is
 * open. Admitted requests are never cut off later: shedding only ever refuses new ones.
 */
export function admitToOrigin(overload: Overload, group: string, origin: string, state: RequestState, breakerPass?: BreakerPass): Admitted {
	const retryAfter = overload.config.retryAfterSeconds;
	const ticket = overload.gate.tryAcquire(group);
	if (!ticket.ok) {
		state.decisions.shed = { scope: ticket.scope, group, limit: ticket.limit, in_flight: ticket.inFlight };
		throw overloaded(`This service is overloaded (${ticket.inFlight} requests in flight on ${ticket.scope === "guard" ? "the guard" : `"${group}"`}). Please retry shortly.`, retryAfter);
	}
	const pass = breakerPass ?? overload.breakerFor(origin).admit();
	if (!pass.ok) {
		ticket.release();
		const seconds = Math.max(retryAfter, Math.ceil(pass.retryAfterMs / 1000));
		state.decisions.breaker = { state: pass.state, origin, retry_after_seconds: seconds };
		throw overloaded("The upstream service is failing; requests to it are paused. Please retry shortly.", seconds);
	}
	if (pass.probe) state.decisions.breaker = { state: "half-open", origin, probe: true };
	return {
		claimOrg(org) {
			const claim = ticket.claimOrg(org);
			if (claim.ok) return;
			state.decisions.shed = { scope: "org", group, limit: claim.limit, in_flight: claim.inFlight };
			throw new GuardError(
				429,
				`Your organization has ${claim.inFlight} requests in flight on "${group}", its share of this service's capacity. Please retry once some complete.`,
				{ type: "rate_limit_error", headers: { "retry-after": String(retryAfter) } },
			);
		},
		reached: (outcome) => pass.done(outcome),
		release() {
			pass.done("cancelled");
			ticket.release();
		},
	};
}

/** An admitted request of a route with several origins: each attempt asks its origin's breaker. */
export interface PoolAdmitted extends Admitted {
	/**
	 * Asks `origin`'s breaker to let this request's next attempt through. A pass becomes the one
	 * {@link Admitted.reached} and {@link Admitted.release} report to; the previous attempt's pass
	 * must have been reported already (a later report to it is ignored).
	 */
	tryOrigin(origin: string): BreakerPass | BreakerRefusal;
}

/**
 * Admits a request to a route with several origins: `529` when the isolate or the group is full,
 * or when every origin's breaker refuses, with `retry-after` the soonest any of them turns
 * half-open (floored at the configured value). Which origin serves it is decided per attempt.
 */
export function admitToPool(overload: Overload, group: string, origins: readonly string[], state: RequestState): PoolAdmitted {
	const retryAfter = overload.config.retryAfterSeconds;
	const looks = origins.map((origin) => overload.breakerFor(origin).peek());
	if (!looks.some((look) => look.admits)) {
		const soonest = Math.min(...looks.map((look) => look.retryAfterMs));
		const seconds = Math.max(retryAfter, Math.ceil(soonest / 1000));
		state.decisions.breaker = { state: "open", origins: origins.length, retry_after_seconds: seconds };
		throw overloaded("Every upstream service of this route is failing; requests to them are paused. Please retry shortly.", seconds);
	}
	// The gate alone: an always-closed breaker's pass stands in until the first attempt's own.
	const admitted = admitToOrigin(overload, group, "", state, { ok: true, probe: false, done: () => undefined });
	let current: BreakerPass | undefined;
	return {
		claimOrg: (org) => admitted.claimOrg(org),
		reached: (outcome) => current?.done(outcome),
		release() {
			current?.done("cancelled");
			admitted.release();
		},
		tryOrigin(origin) {
			const pass = overload.breakerFor(origin).admit();
			if (pass.ok) {
				current = pass;
				if (pass.probe) state.decisions.breaker = { state: "half-open", origin, probe: true };
			}
			return pass;
		},
	};
}

function overloaded(message: string, retryAfterSeconds: number): GuardError {
	return new GuardError(529, message, { type: "overloaded_error", headers: { "retry-after": String(retryAfterSeconds) } });
}
