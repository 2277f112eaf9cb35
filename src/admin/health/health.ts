import type { GuardConfig } from "../../config/guard-config";
import type { Env } from "../../env";
import type { Overload } from "../../overload/admission";
import { originTarget } from "../../proxy/origin";
import { configSummary } from "./config-summary";

/**
 * `GET /_guard/api/health`: the answering isolate's view. Breakers and in-flight counts are per
 * isolate by design (README, "Overload"), so another isolate may see other states.
 */
export function health(config: GuardConfig, overload: Overload, env: Env): Record<string, unknown> {
	const origins = [...new Set(config.routes.map((route) => originTarget(route, config, env.ORIGIN).name))];
	const gate = overload.gate.snapshot();
	return {
		isolate: {
			breakers: origins.map((origin) => ({ origin, state: overload.breakerFor(origin).state })),
			in_flight: { total: gate.in_flight, max_in_flight: gate.max_in_flight, groups: gate.groups },
		},
		config: configSummary(config, env),
	};
}
