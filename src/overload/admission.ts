import { GuardError } from "../errors/guard-error";
import type { RequestState } from "../lib/request-state";
import { type BreakerOutcome, CircuitBreaker } from "./circuit-breaker";
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
export function admitToOrigin(overload: Overload, group: string, origin: string, state: RequestState): Admitted {
	const retryAfter = overload.config.retryAfterSeconds;
	const ticket = overload.gate.tryAcquire(group);
	if (!ticket.ok) {
		state.decisions.shed = { scope: ticket.scope, group, limit: ticket.limit, in_flight: ticket.inFlight };
		throw overloaded(`This service is overloaded (${ticket.inFlight} requests in flight on ${ticket.scope === "guard" ? "the guard" : `"${group}"`}). Please retry shortly.`, retryAfter);
	}
	const pass = overload.breakerFor(origin).admit();
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

function overloaded(message: string, retryAfterSeconds: number): GuardError {
	return new GuardError(529, message, { type: "overloaded_error", headers: { "retry-after": String(retryAfterSeconds) } });
}
