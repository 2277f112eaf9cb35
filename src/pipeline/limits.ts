import type { Identity } from "../keys/authenticate";
import { peekTopLevelString } from "../lib/peek-field";
import { enforceLimits, type LimitOutcome, wantsModel } from "../limits/enforce-limits";
import type { Exchange } from "./exchange";

/**
 * How far the body is read for its `model` before admission: the official SDKs put it first or
 * after `messages`, so it is in the first slice of any but a long prompt's body.
 */
const MODEL_PEEK = { maxBytes: 64 * 1024, maxMs: 250 };

/**
 * Stage 5, the last check before forwarding, so no later check refuses a request unseen by the
 * limiter: the organisation's usage limits (`429`), its `anthropic-ratelimit-*` headers on every
 * answer, and for a metered body of unknown length the budget it is charged against as it arrives.
 *
 * Only when the organisation's tier gives model families pools of their own is the body's top-level
 * `model` read first, from its first bytes (a tee: the origin still gets every byte), so the
 * family's pool is the one checked; the model the origin reports settles it either way.
 */
export async function chargeLimits(exchange: Exchange, identity: Identity | undefined): Promise<LimitOutcome | undefined> {
	const { request, route, config, env, state } = exchange;
	if (identity === undefined) return undefined;
	const model = env.USAGE !== undefined && wantsModel(route, config, identity.orgId) ? await peekTopLevelString(request, "model", MODEL_PEEK) : undefined;
	const limits = await enforceLimits(request, route, config, env.USAGE, identity, state, model);
	Object.assign(state.responseHeaders, limits.headers);
	return limits;
}
