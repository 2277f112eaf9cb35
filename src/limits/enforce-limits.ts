import type { GuardConfig } from "../config/guard-config";
import type { Route } from "../config/route-table";
import { GuardError } from "../errors/guard-error";
import type { RequestState } from "../lib/request-state";
import { type Decision, LimiterUnavailableError, type RateLimitSnapshot, type Rejection, rejectionMessage, retryAfterSeconds } from "./limiter";
import { createLimiterClient, type LimiterClient, type UsageNamespace } from "./limiter-client";
import { FALLBACK_SHARE, FallbackLimit } from "./fallback-limit";
import type { Family } from "./families";
import { costOf, usd } from "./spend";
import { familyFor, resolveLimits, type TierTable, tierOf } from "./tiers";
import type { ReportedUsage } from "../lib/usage-tap";
import { declaredLength } from "../lib/content-length";

const clients = new WeakMap<object, { config: GuardConfig; client: LimiterClient }>();

/** One client per isolate and configuration: leases and remembered rejections live in it. */
function clientFor(namespace: UsageNamespace, config: GuardConfig, tiers: TierTable): LimiterClient {
	const found = clients.get(namespace);
	if (found && found.config === config) return found.client;
	const client = createLimiterClient({ namespace, tiers, mode: config.limiterMode });
	clients.set(namespace, { config, client });
	return client;
}

/** What admission gives the pipeline: response headers, and how to settle the actual usage. */
export interface LimitOutcome {
	headers: Record<string, string>;
	/**
	 * Debits the origin's reported usage (absent when nothing was charged). Input the origin did not
	 * report is charged as estimated from `bytesRead`; `counted = false` gives the whole charge back,
	 * only for a request the origin never received at all.
	 */
	settle?: (usage: ReportedUsage, bytesRead: number, counted?: boolean) => Promise<void>;
	/**
	 * For a metered body of unknown length: the bytes it may have before its estimate passes what
	 * the organisation has left, and the `429` to answer then. The body is charged as it arrives.
	 */
	budget?: { bytes: number; refuse: () => GuardError };
}

/** Bytes per token for the estimate made before forwarding (the origin's usage settles it later). */
export const BYTES_PER_TOKEN = 4;

/** Whether a request of `orgId` on this route is charged to a model family's pool, so its `model` is wanted before forwarding. */
export function wantsModel(route: Route, config: GuardConfig, orgId: string): boolean {
	return route.meterTokens && config.tiers !== undefined && tierOf(config.tiers, orgId).pooled;
}

/**
 * Admits an identified request against its organisation's (and workspace's) usage limits, and
 * returns the `anthropic-ratelimit-*` headers for its response. A rejection is `429
 * rate_limit_error` naming the limit, with `retry-after` (whole seconds, at least 1) and
 * `retry-after-ms`. When the usage object cannot answer, the route's `limiter_failure` policy
 * decides.
 *
 * `model` (read from the body before forwarding, when it could be) picks the model family whose
 * pool is charged; the answer's own `model` settles it, moving the charge if the two differ. A
 * spent budget is `429 rate_limit_error` naming it and when it resets, with `x-should-retry:
 * false` and no retry hints: retrying in seconds cannot help.
 */
export async function enforceLimits(
	request: Request,
	route: Route,
	config: GuardConfig,
	usage: UsageNamespace | undefined,
	identity: { orgId: string; workspaceId: string | null; keyId?: string },
	state: RequestState,
	model?: string,
): Promise<LimitOutcome> {
	if (config.tiers === undefined || usage === undefined) return { headers: {} };
	const tiers = config.tiers;
	const declared = declaredLength(request.headers);
	const inputTokens = route.meterTokens && typeof declared === "number" ? Math.ceil(declared / BYTES_PER_TOKEN) : 0;
	const client = clientFor(usage, config, tiers);
	const named = route.meterTokens ? familyFor(tiers, identity.orgId, model) : undefined;
	let decision: Decision;
	try {
		decision = await client.admit({
			orgId: identity.orgId,
			workspaceId: identity.workspaceId ?? undefined,
			keyId: identity.keyId,
			inputTokens,
			family: named?.name,
			// For the operator console: the last refusal's request ID.
			requestId: state.requestId,
		});
	} catch (error) {
		if (!(error instanceof LimiterUnavailableError)) throw error;
		return whenUnavailable(route, tiers, identity.orgId, error, state);
	}
	const headers = rateLimitHeaders(decision.snapshot);
	if (decision.admitted) {
		// The isolate's running count of object calls: what the benchmark divides by requests.
		state.decisions.limit = {
			outcome: "admitted",
			source: decision.source,
			input_tokens_estimate: inputTokens,
			object_calls: client.stats.objectCalls,
			...(model === undefined ? {} : { model: model.slice(0, 100) }),
			...(decision.family === undefined ? {} : { family: decision.family }),
		};
		const { reservation } = decision;
		const input = decision.snapshot.inputTokens;
		const unknownLength = route.meterTokens && declared === undefined && request.body !== null;
		return {
			headers,
			budget: unknownLength
				? {
						bytes: Math.max(0, input.remaining) * BYTES_PER_TOKEN,
						refuse: () => {
							const retryAfterMs = Math.max(1000, input.resetAt - Date.now());
							const pool = decision.family === undefined ? "" : ` for the ${decision.family} model family`;
							state.decisions.limit = { outcome: "limited", limit: "input_tokens", scope: "organization", counted_as_body_arrived: true, retry_after_ms: retryAfterMs, ...(decision.family === undefined ? {} : { family: decision.family }) };
							return new GuardError(429, `This request's input, counted as its body arrived, is over your organization's input tokens per minute${pool}; retry after the time in the retry-after header.`, {
								headers: { ...headers, "retry-after": String(retryAfterSeconds(retryAfterMs)), "retry-after-ms": String(Math.ceil(retryAfterMs)) },
							});
						},
					}
				: undefined,
			async settle(reported: ReportedUsage, bytesRead: number, counted = true) {
				const estimate = route.meterTokens ? Math.max(reservation.inputTokens, Math.ceil(bytesRead / BYTES_PER_TOKEN)) : 0;
				// The model the origin reports decides the family; a model in none goes to the organisation's pool.
				const family = reported.model === undefined ? named : familyFor(tiers, identity.orgId, reported.model);
				const actual = {
					inputTokens: reported.inputTokens === undefined ? (counted ? estimate : 0) : countedInput(reported, family, tiers, identity.orgId),
					outputTokens: reported.outputTokens ?? 0,
					counted,
					family: family?.name ?? null,
					costNanos: costOfUsage(reported, family, tiers, identity.orgId),
					// For the operator console's token chart (the limits count them through inputTokens).
					cacheReadTokens: reported.cacheReadInputTokens,
					cacheWriteTokens: reported.cacheCreationInputTokens,
				};
				state.decisions.usage = {
					input_tokens: actual.inputTokens,
					output_tokens: actual.outputTokens,
					...(reported.cacheCreationInputTokens === undefined ? {} : { cache_creation_input_tokens: reported.cacheCreationInputTokens }),
					...(reported.cacheReadInputTokens === undefined ? {} : { cache_read_input_tokens: reported.cacheReadInputTokens }),
					...(reported.model === undefined ? {} : { model: reported.model.slice(0, 100) }),
				};
				if (actual.costNanos !== undefined) state.decisions.spend = { outcome: "charged", family: family?.name ?? null, cost_usd: usd(actual.costNanos) };
				await client.settle(reservation, actual).catch((error: unknown) => {
					console.warn({ request_id: state.requestId, message: "usage not settled", error: String(error) });
				});
			},
		};
	}
	state.decisions.limit = {
		outcome: "limited",
		limit: decision.limit,
		scope: decision.scope,
		allowed_per_minute: decision.allowedPerMinute,
		retry_after_ms: decision.retryAfterMs,
		...(decision.family === undefined ? {} : { family: decision.family }),
	};
	if (decision.limit === "spend") throw overBudget(decision, headers, state);
	if (decision.retryAfterMs !== null) {
		headers["retry-after"] = String(retryAfterSeconds(decision.retryAfterMs));
		headers["retry-after-ms"] = String(Math.ceil(decision.retryAfterMs));
	}
	throw new GuardError(429, rejectionMessage(decision), { headers });
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

/**
 * Input as the tier counts it toward input tokens per minute: uncached input and cache writes,
 * and cache reads only where the family (or the tier) says the API counts them.
 */
function countedInput(reported: ReportedUsage, family: Family | undefined, tiers: TierTable, orgId: string): number {
	const countReads = family?.countCacheReads ?? tierOf(tiers, orgId).countCacheReads;
	return (reported.inputTokens ?? 0) + (reported.cacheCreationInputTokens ?? 0) + (countReads ? (reported.cacheReadInputTokens ?? 0) : 0);
}

/** What the reported usage costs at the family's (or the tier's) price, in nano-dollars; undefined when unpriced or unreported. */
function costOfUsage(reported: ReportedUsage, family: Family | undefined, tiers: TierTable, orgId: string): number | undefined {
	const price = family?.price ?? tierOf(tiers, orgId).price;
	if (price === undefined || (reported.inputTokens === undefined && reported.outputTokens === undefined)) return undefined;
	return costOf(price, {
		input: reported.inputTokens ?? 0,
		output: reported.outputTokens ?? 0,
		cacheWrite: reported.cacheCreationInputTokens ?? 0,
		cacheRead: reported.cacheReadInputTokens ?? 0,
	});
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
