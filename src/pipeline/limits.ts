import type { Identity } from "../keys/authenticate";
import { enforceLimits, type LimitOutcome } from "../limits/enforce-limits";
import type { Exchange } from "./exchange";

/**
 * Stage 5, the last check before forwarding, so no later check refuses a request unseen by the
 * limiter: the organisation's usage limits (`429`), its `anthropic-ratelimit-*` headers on every
 * answer, and for a metered body of unknown length the budget it is charged against as it arrives.
 */
export async function chargeLimits(exchange: Exchange, identity: Identity | undefined): Promise<LimitOutcome | undefined> {
	const { request, route, config, env, state } = exchange;
	if (identity === undefined) return undefined;
	const limits = await enforceLimits(request, route, config, env.USAGE, identity, state);
	Object.assign(state.responseHeaders, limits.headers);
	return limits;
}
