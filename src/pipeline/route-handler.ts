import type { GuardConfig } from "../config/guard-config";
import type { Route } from "../config/route-table";
import type { Env } from "../env";
import type { Overload } from "../overload/admission";
import { originPool } from "../origins/origin-pool";
import { originTarget } from "../proxy/origin";
import { answer } from "./answer";
import { bodyRules } from "./body-rules";
import { checkHeaders } from "./check-headers";
import type { Exchange } from "./exchange";
import { forward } from "./forward";
import { identify } from "./identify";
import { chargeLimits } from "./limits";
import type { LimitOutcome } from "../limits/client/enforce-limits";
import type { GuardRequest } from "./request-state";
import { shed } from "./shed";

/**
 * A route's whole request path, as its ordered stages: each either hands on what it decided or
 * throws the refusal the client gets. Everything the request line and headers can decide is
 * decided before `forward` contacts the origin.
 */
export function routeHandler(route: Route, config: GuardConfig, overload: Overload) {
	return async function handleRoute(request: GuardRequest, env: Env, ctx: ExecutionContext): Promise<Response> {
		const state = request.guard;
		state.route = route.name;
		// A route with an origins list sends through its pool: the retry loop is the target's fetch (src/origins/).
		const pool = route.origins === undefined ? undefined : originPool(route, env as unknown as Record<string, unknown>, overload, state);
		const target = pool?.target ?? originTarget(route, config, env.ORIGIN);
		state.origin = target.name;
		const exchange: Exchange = { request, env, ctx, route, config, state, incoming: state.url, target };
		const slot = shed(exchange, overload, pool);
		let limits: LimitOutcome | undefined;
		try {
			const identity = await identify(exchange, slot);
			checkHeaders(exchange);
			const plan = bodyRules(exchange);
			limits = await chargeLimits(exchange, identity, plan);
			const reached = await forward(exchange, slot, identity, plan, limits);
			return await answer(exchange, slot, overload, limits, reached);
		} catch (error) {
			slot.release();
			// The last resort: a path that ended the request without settling its claim settles it as refused.
			limits?.claim?.settle({ kind: "refused", bytesRead: state.bytesIn?.() ?? 0 });
			throw error;
		}
	};
}
