import type { Route } from "../config/route-table";
import type { RequestState } from "../lib/request-state";
import { type Admitted, admitToPool, type Overload, type PoolAdmitted } from "../overload/admission";
import type { OriginTarget } from "../proxy/origin";
import { type AttemptRecord, sendWithRetries } from "./attempts";
import { orderOrigins } from "./origin-order";
import { specTarget } from "./origin-target";

/** One request's view of a route's origins list: the target forward sends to, and its admission. */
export interface OriginPool {
	/**
	 * What the pipeline sends the request to. Its `fetch` is the whole retry loop; its `name` and
	 * `base` are the answering origin's once one answered (the first in order before that).
	 */
	readonly target: OriginTarget;
	/** Stage 1 for the route: the gate, and `529` only when every origin's breaker is open. */
	admit(group: string): Admitted;
}

/**
 * The origins of a route with an `origins` list, in this request's order (priority, then drawn by
 * weight). Each attempt is listed in the log line's `decisions.attempts`; `state.origin` names the
 * origin that answered.
 */
export function originPool(
	route: Route,
	bindings: Readonly<Record<string, unknown>>,
	overload: Overload,
	state: RequestState,
	random: () => number = Math.random,
): OriginPool {
	const specs = route.origins ?? [];
	const candidates = orderOrigins(specs, random).map((spec) => specTarget(spec, bindings));
	let current = candidates[0] as OriginTarget;
	let slot: PoolAdmitted | undefined;
	const attempts: AttemptRecord[] = [];
	const target: OriginTarget = {
		// The pool's "URL" is the client's own; each attempt maps it onto its origin.
		url: (incoming) => incoming.href,
		fetch(input, init) {
			if (slot === undefined || route.retry === undefined) return Promise.reject(new Error("the origin pool was not admitted"));
			state.decisions.attempts = attempts;
			return sendWithRetries(
				{
					candidates,
					retry: route.retry,
					slot,
					admits: (origin) => overload.breakerFor(origin).peek().admits,
					record: (attempt) => attempts.push(attempt),
					answering: (answering) => {
						current = answering;
						state.origin = answering.name;
					},
				},
				new URL(input),
				init,
			);
		},
		get base() {
			return current.base;
		},
		get name() {
			return current.name;
		},
	};
	return {
		target,
		admit(group) {
			slot = admitToPool(overload, group, specs.map((spec) => spec.name), state);
			return slot;
		},
	};
}
