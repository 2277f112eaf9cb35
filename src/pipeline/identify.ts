import { GuardError } from "../errors/guard-error";
import { authenticate, type Identity } from "../keys/authenticate";
import { usageTally } from "../limits/console/usage-tally";
import type { Admitted } from "../overload/admission";
import type { Exchange } from "./exchange";

/**
 * Stage 2: the API key (`401`, `403`) on routes that need one, then the organisation's share of
 * the route group's slots (`429` past it). Every answer to an identified request, error or not,
 * carries `anthropic-organization-id`, as the API's do.
 */
export async function identify(exchange: Exchange, slot: Admitted): Promise<Identity | undefined> {
	const { request, route, config, env, state } = exchange;
	if (!route.auth) return undefined;
	// Validation refuses a table with auth routes and no KEYS; this only guards a changed binding.
	if (!env.KEYS) throw new GuardError(500, "The guard's key store (KEYS) is not bound.", { type: "api_error" });
	const identity = await authenticate(request, route, config, env.KEYS, state);
	try {
		slot.claimOrg(identity.orgId);
	} catch (error) {
		// Decided here, before the limiter: the console hears of it with the isolate's next object call.
		if (error instanceof GuardError && error.status === 429) usageTally.refused(identity.orgId, "share", state.requestId, Date.now(), true);
		throw error;
	}
	return identity;
}
