import type { GuardConfig } from "../../config/guard-config";
import type { Env } from "../../env";
import type { Overload } from "../../overload/admission";
import type { CircuitBreaker } from "../../overload/circuit-breaker";
import { originTarget } from "../../proxy/origin";
import { configSummary } from "./config-summary";

/**
 * `GET /_guard/api/health`: the answering isolate's view. Breakers and in-flight counts are per
 * isolate by design (README, "Overload"), so another isolate may see other states.
 */
export function health(config: GuardConfig, overload: Overload, env: Env): Record<string, unknown> {
	const origins = [...new Set(config.routes.flatMap((route) => route.origins?.map((origin) => origin.name) ?? [originTarget(route, config, env.ORIGIN).name]))];
	const gate = overload.gate.snapshot();
	return {
		isolate: {
			breakers: origins.map((origin) => breakerView(origin, overload.breakerFor(origin))),
			in_flight: { total: gate.in_flight, max_in_flight: gate.max_in_flight, groups: gate.groups },
		},
		config: configSummary(config, env),
	};
}

/**
 * One origin's breaker: its state, its recent failures (the breaker's sliding window: requests with
 * an outcome, failures, and their rate, null with none) and, open, when it turns half-open.
 */
function breakerView(origin: string, breaker: CircuitBreaker): Record<string, unknown> {
	const { requests, failures } = breaker.recent();
	const halfOpenAt = breaker.halfOpenAt;
	return {
		origin,
		state: breaker.state,
		recent: { requests, failures, failure_rate: requests === 0 ? null : Math.round((failures / requests) * 1000) / 1000 },
		half_open_at: halfOpenAt === undefined ? null : new Date(halfOpenAt).toISOString(),
	};
}
