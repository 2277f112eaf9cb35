import type { GuardConfig } from "../../config/guard-config";
import type { Route } from "../../config/route-table";
import { GuardError } from "../../errors/guard-error";
import type { RequestState } from "../../lib/request-state";
import type { BatchScan } from "../../lib/json/batch-requests";
import { batchClaim, claimCost, pooledFamilies, pricesFor, tokensOf } from "../claims/claim-price";
import { RequestClaim } from "../claims/request-claim";
import { type Decision, LimiterUnavailableError, type RateLimitSnapshot, type Rejection } from "../decisions";
import { familyFor, resolveLimits, type TierTable } from "../rates/tiers";
import { usd } from "../spend/money";
import { FALLBACK_SHARE, FallbackLimit } from "./fallback-limit";
import { createLimiterClient, type LimiterClient, type UsageNamespace } from "./limiter-client";
import { rejectionMessage, retryAfterSeconds } from "./rejection-messages";

const clients = new WeakMap<object, { config: GuardConfig; client: LimiterClient }>();

/** One client per isolate and configuration: leases and remembered rejections live in it. */
function clientFor(namespace: UsageNamespace, config: GuardConfig, tiers: TierTable): LimiterClient {
	const found = clients.get(namespace);
	if (found && found.config === config) return found.client;
	const client = createLimiterClient({ namespace, tiers, mode: config.limiterMode });
	clients.set(namespace, { config, client });
	return client;
}

/** What admission gives the pipeline: response headers, and the request's claim (absent: nothing to settle). */
export interface LimitOutcome {
	headers: Record<string, string>;
	claim?: RequestClaim;
}

/**
 * The request's `model` and `max_tokens` as read before admission: `known` when the body's whole
 * object was read; otherwise what was seen in the time allowed (a later duplicate may replace it).
 */
export interface RequestFields {
	readonly known: boolean;
	/** A batch's requests, read whole before admission. */
	readonly batch?: BatchScan | undefined;
	readonly model?: string | undefined;
	readonly maxTokens?: number | undefined;
}

/** Whether a request of `orgId` on this route is claimed by its model and `max_tokens`, so they are read before admission. */
export function wantsFields(route: Route, config: GuardConfig): boolean {
	return route.meterTokens && config.tiers !== undefined;
}

/**
 * Admits an identified request against its organisation's (and workspace's) usage limits by
 * claiming everything it may cost (ACCOUNTING.md), and returns the `anthropic-ratelimit-*` headers
 * for its response and the claim the pipeline settles once. A rejection is `429
 * rate_limit_error` naming the limit, with `retry-after` (whole seconds, at least 1) and
 * `retry-after-ms`; a claim that does not fit a budget is `429` with `x-should-retry: false`.
 * When the usage object cannot answer, the route's `limiter_failure` policy decides (an
 * overloaded object is `529` whatever the policy).
 *
 * The claim: 1 request; input from the body's length (`lengthKnown`), else growing as it arrives;
 * output `max_tokens`; money at the model's price (the tier's dearest while it is unknown), in the
 * model's pool (every pool it could land in while it is unknown).
 */
export async function enforceLimits(
	route: Route,
	config: GuardConfig,
	usage: UsageNamespace | undefined,
	identity: { orgId: string; workspaceId: string | null; keyId?: string },
	state: RequestState,
	body: { readonly declared: number | undefined; readonly lengthKnown: boolean; readonly present: boolean; readonly fields: RequestFields | undefined },
	waitUntil: (promise: Promise<unknown>) => void,
): Promise<LimitOutcome> {
	if (config.tiers === undefined || usage === undefined) return { headers: {} };
	const tiers = config.tiers;
	const meter = route.meterTokens ? "messages" : route.meterBatches ? "batch" : undefined;
	const metered = meter !== undefined;
	const batch = meter === "batch";
	// A batch's requests are read as its body passes; a message's fields, when the peek could.
	const fields: RequestFields = metered ? (body.fields ?? { known: !body.present }) : { known: true };
	const inputTokens = metered && body.lengthKnown ? tokensOf(body.declared ?? 0) : 0;
	const batchCost = batch && fields.batch !== undefined ? batchClaim(tiers, identity.orgId, fields.batch, inputTokens) : undefined;
	const outputTokens = batchCost?.output ?? fields.maxTokens ?? 0;
	const client = clientFor(usage, config, tiers);
	// A model seen before the body's object closed is a hint: claimed in its pool, checked again at the body's end.
	const modelSeen = fields.known || fields.model !== undefined;
	const named = meter === "messages" && modelSeen ? familyFor(tiers, identity.orgId, fields.model) : undefined;
	const unknownPools = meter === "messages" && !modelSeen ? pooledFamilies(tiers, identity.orgId).map((family) => family.name) : [];
	const nanos = batchCost?.nanos ?? (metered ? claimCost(pricesFor(tiers, identity.orgId, fields.model, modelSeen && !batch), inputTokens, outputTokens, batch) : 0);
	const grows = metered && body.present && !body.lengthKnown;
	const needsClaim = metered && (inputTokens > 0 || outputTokens > 0 || nanos > 0 || grows || !fields.known || batch);
	let decision: Decision;
	try {
		decision = await client.admit({
			orgId: identity.orgId,
			workspaceId: identity.workspaceId ?? undefined,
			keyId: identity.keyId,
			inputTokens,
			outputTokens,
			family: named?.limits === undefined ? undefined : named.name,
			// A batch's claim outlives its request (held until its results are read): only the object can hold it.
			...(needsClaim ? { claim: { nanos, alsoFamilies: unknownPools, atObject: batch } } : {}),
			// For the operator console: the last refusal's request ID.
			requestId: state.requestId,
		});
	} catch (error) {
		if (!(error instanceof LimiterUnavailableError)) throw error;
		return whenUnavailable(route, tiers, identity.orgId, error, state);
	}
	const headers = rateLimitHeaders(decision.snapshot);
	if (!decision.admitted) throw refusal(decision, headers, state);
	// The isolate's running count of object calls: what the benchmark divides by requests.
	state.decisions.limit = {
		outcome: "admitted",
		source: decision.source,
		input_tokens_claimed: inputTokens,
		output_tokens_claimed: outputTokens,
		...(nanos > 0 ? { claimed_usd: usd(nanos) } : {}),
		object_calls: client.stats.objectCalls,
		...(fields.model === undefined ? {} : { model: fields.model.slice(0, 100) }),
		...(fields.known ? {} : { model_known: false }),
		...(decision.family === undefined ? {} : { family: decision.family }),
	};
	const claim = new RequestClaim({
		client,
		tiers,
		orgId: identity.orgId,
		reservation: decision.reservation,
		state,
		waitUntil,
		meter,
		fields: { known: fields.known, model: fields.model, maxTokens: outputTokens },
		claimed: { inputTokens, outputTokens, nanos },
		grows,
		refuse: (rejection, holdOpenUntil) => grownPast(rejection, headers, state, holdOpenUntil),
	});
	return { headers, claim };
}

/** The answer to a refused admission. */
function refusal(decision: Rejection, headers: Record<string, string>, state: RequestState): GuardError {
	state.decisions.limit = {
		outcome: "limited",
		limit: decision.limit,
		scope: decision.scope,
		allowed_per_minute: decision.allowedPerMinute,
		retry_after_ms: decision.retryAfterMs,
		...(decision.family === undefined ? {} : { family: decision.family }),
	};
	if (decision.limit === "spend") return overBudget(decision, headers, state);
	if (decision.retryAfterMs !== null) {
		headers["retry-after"] = String(retryAfterSeconds(decision.retryAfterMs));
		headers["retry-after-ms"] = String(Math.ceil(decision.retryAfterMs));
	}
	return new GuardError(429, rejectionMessage(decision), { headers });
}

/** A growth the organisation's limits (or budgets) could not take: the upload is refused with `429`. */
function grownPast(rejection: Rejection | undefined, headers: Record<string, string>, state: RequestState, holdOpenUntil?: Promise<unknown>): GuardError {
	if (rejection === undefined) {
		state.decisions.limit = { outcome: "limited", limit: "unavailable", counted_as_body_arrived: true };
		return new GuardError(429, "This request's usage could not be claimed as its body arrived; retry shortly.", { headers: { ...headers, "retry-after": "1" }, holdOpenUntil });
	}
	const error = refusal(rejection, { ...headers }, state);
	state.decisions.limit = { ...(state.decisions.limit as object), counted_as_body_arrived: true };
	const pool = rejection.family === undefined ? "" : ` for the ${rejection.family} model family`;
	const message =
		rejection.limit === "input_tokens"
			? `This request's input, counted as its body arrived, is over your organization's input tokens per minute${pool}; retry after the time in the retry-after header.`
			: error.message;
	return new GuardError(429, message, { type: error.type, headers: error.headers, holdOpenUntil });
}

/**
 * A spent budget: `429 rate_limit_error` naming it and when it resets. `x-should-retry: false`
 * and no `retry-after`: the official SDKs then do not retry, and no hint invites a retry in
 * seconds that cannot succeed before the period turns.
 */
function overBudget(decision: Rejection, headers: Record<string, string>, state: RequestState): GuardError {
	const budget = decision.budget;
	if (budget !== undefined) {
		state.decisions.spend = {
			outcome: "over-budget",
			scope: budget.scope,
			...(budget.id === undefined ? {} : { id: budget.id }),
			period: budget.period,
			budget_usd: usd(budget.limitNanos),
			spent_usd: usd(budget.spentNanos),
			resets_at: new Date(budget.resetAt).toISOString(),
		};
	}
	return new GuardError(429, rejectionMessage(decision), { type: "rate_limit_error", headers: { ...headers, "x-should-retry": "false" } });
}

const fallback = new FallbackLimit();

/**
 * The route's policy when the usage object fails, is overloaded or does not answer in time: `open`
 * admits (and says so), `closed` answers `529 overloaded_error`, `local` admits up to a
 * conservative in-isolate share of the organisation's request limit and answers `429` past it.
 */
function whenUnavailable(route: Route, tiers: TierTable, orgId: string, error: LimiterUnavailableError, state: RequestState): LimitOutcome {
	const unavailable = { "x-guard-ratelimit": "unavailable" };
	state.decisions.limit = { outcome: `unavailable-${route.limiterFailure}`, kind: error.kind };
	// An overloaded object is asked again by every retry: shedding is the only answer that helps it.
	if (error.kind === "overloaded") {
		state.decisions.limit = { outcome: "unavailable-overloaded", kind: error.kind };
		throw new GuardError(529, "The rate limiter is overloaded; please retry shortly.", { headers: { ...unavailable, "retry-after": "1" } });
	}
	switch (route.limiterFailure) {
		case "open":
			return { headers: unavailable };
		case "closed":
			throw new GuardError(529, "The rate limiter is temporarily unavailable; please retry shortly.", {
				headers: { ...unavailable, "retry-after": "1" },
			});
		case "local": {
			const perMinute = resolveLimits(tiers, orgId).organization.requestsPerMinute;
			const local = fallback.admit(orgId, perMinute);
			if (local.admitted) return { headers: unavailable };
			state.decisions.limit = { outcome: "unavailable-local-limited", local_per_minute: Math.floor(perMinute * FALLBACK_SHARE) };
			throw new GuardError(429, "Your organization is over its rate limit while the rate limiter recovers; retry after the time in the retry-after header.", {
				headers: { ...unavailable, "retry-after": String(retryAfterSeconds(local.retryAfterMs)), "retry-after-ms": String(local.retryAfterMs) },
			});
		}
		default:
			return assertNever(route.limiterFailure);
	}
}

function assertNever(value: never): never {
	throw new Error(`unhandled failure policy ${String(value)}`);
}

/** The `anthropic-ratelimit-*` headers of a decision; `reset` is RFC 3339. */
export function rateLimitHeaders(snapshot: RateLimitSnapshot): Record<string, string> {
	const headers: Record<string, string> = {};
	const entries = [
		["requests", snapshot.requests],
		["input-tokens", snapshot.inputTokens],
		["output-tokens", snapshot.outputTokens],
		["tokens", snapshot.tokens],
	] as const;
	for (const [name, status] of entries) {
		headers[`anthropic-ratelimit-${name}-limit`] = String(status.limit);
		headers[`anthropic-ratelimit-${name}-remaining`] = String(status.remaining);
		headers[`anthropic-ratelimit-${name}-reset`] = new Date(status.resetAt).toISOString();
	}
	return headers;
}
