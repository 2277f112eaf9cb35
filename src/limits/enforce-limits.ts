import type { GuardConfig } from "../config/guard-config";
import type { Route } from "../config/route-table";
import { GuardError } from "../errors/guard-error";
import type { RequestState } from "../lib/request-state";
import { type Decision, LimiterUnavailableError, type RateLimitSnapshot, rejectionMessage, retryAfterSeconds } from "./limiter";
import { createLimiterClient, type LimiterClient, type UsageNamespace } from "./limiter-client";
import { FALLBACK_SHARE, FallbackLimit } from "./fallback-limit";
import { resolveLimits, type TierTable } from "./tiers";
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

/**
 * Admits an identified request against its organisation's (and workspace's) usage limits, and
 * returns the `anthropic-ratelimit-*` headers for its response. A rejection is `429
 * rate_limit_error` naming the limit, with `retry-after` (whole seconds, at least 1) and
 * `retry-after-ms`. When the usage object cannot answer, the route's `limiter_failure` policy
 * decides.
 */
export async function enforceLimits(
	request: Request,
	route: Route,
	config: GuardConfig,
	usage: UsageNamespace | undefined,
	identity: { orgId: string; workspaceId: string | null },
	state: RequestState,
): Promise<LimitOutcome> {
	if (config.tiers === undefined || usage === undefined) return { headers: {} };
	const declared = declaredLength(request.headers);
	const inputTokens = route.meterTokens && typeof declared === "number" ? Math.ceil(declared / BYTES_PER_TOKEN) : 0;
	const client = clientFor(usage, config, config.tiers);
	let decision: Decision;
	try {
		decision = await client.admit({
			orgId: identity.orgId,
			workspaceId: identity.workspaceId ?? undefined,
			inputTokens,
		});
	} catch (error) {
		if (!(error instanceof LimiterUnavailableError)) throw error;
		return whenUnavailable(route, config.tiers, identity.orgId, error, state);
	}
	const headers = rateLimitHeaders(decision.snapshot);
	if (decision.admitted) {
		// The isolate's running count of object calls: what the benchmark divides by requests.
		state.decisions.limit = { outcome: "admitted", source: decision.source, input_tokens_estimate: inputTokens, object_calls: client.stats.objectCalls };
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
							state.decisions.limit = { outcome: "limited", limit: "input_tokens", scope: "organization", counted_as_body_arrived: true, retry_after_ms: retryAfterMs };
							return new GuardError(429, "This request's input, counted as its body arrived, is over your organization's input tokens per minute; retry after the time in the retry-after header.", {
								headers: { ...headers, "retry-after": String(retryAfterSeconds(retryAfterMs)), "retry-after-ms": String(Math.ceil(retryAfterMs)) },
							});
						},
					}
				: undefined,
			async settle(reported: ReportedUsage, bytesRead: number, counted = true) {
				const estimate = route.meterTokens ? Math.max(reservation.inputTokens, Math.ceil(bytesRead / BYTES_PER_TOKEN)) : 0;
				const actual = {
					inputTokens: reported.inputTokens ?? (counted ? estimate : 0),
					outputTokens: reported.outputTokens ?? 0,
					counted,
				};
				state.decisions.usage = { input_tokens: actual.inputTokens, output_tokens: actual.outputTokens };
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
	};
	if (decision.retryAfterMs !== null) {
		headers["retry-after"] = String(retryAfterSeconds(decision.retryAfterMs));
		headers["retry-after-ms"] = String(Math.ceil(decision.retryAfterMs));
	}
	throw new GuardError(429, rejectionMessage(decision), { headers });
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
