import { type GuardConfig, KNOWN_SECRETS } from "../../config/guard-config";
import type { Env } from "../../env";
import { type Budgets, usd } from "../../limits/spend/money";

/**
 * The configuration as the health endpoint shows it: routes, limits, overload bounds and which
 * bindings and secrets are present. Never a secret's value: secrets appear as `true`/`false`.
 */
export function configSummary(config: GuardConfig, env: Env): Record<string, unknown> {
	const overload = config.overload;
	return {
		routes: config.routes.map((route) => ({
			name: route.name,
			methods: route.methods,
			path: route.path,
			group: route.group ?? null,
			max_body_bytes: route.maxBodyBytes,
			auth: route.auth,
			meter_tokens: route.meterTokens,
			limiter_failure: route.limiterFailure,
			// A route's origins list, when it has one (README "Origins"): names, never credentials (refused in config).
			...(route.origins === undefined
				? {}
				: {
						origins: route.origins.map((origin) => ({ origin: origin.name, priority: origin.priority, weight: origin.weight })),
						max_attempts: route.retry?.maxAttempts,
						replay_max_bytes: route.retry?.replayMaxBytes,
						connect_timeout_seconds: (route.retry?.connectTimeoutMs ?? 0) / 1000,
						retry_statuses: route.retry?.retryStatuses,
					}),
		})),
		limiter_mode: config.limiterMode,
		key_cache_ttl_seconds: config.keyCacheTtlMs / 1000,
		tiers:
			config.tiers === undefined
				? null
				: [...config.tiers.tiers.values()].map((tier) => ({
						name: tier.name,
						requests_per_minute: tier.limits.requestsPerMinute,
						input_tokens_per_minute: tier.limits.inputTokensPerMinute,
						output_tokens_per_minute: tier.limits.outputTokensPerMinute,
						families: tier.families.map((family) => family.name),
						budgets_usd: tier.budgets === undefined ? null : mapBudgets(tier.budgets),
					})),
		org_tiers: config.tiers === undefined ? {} : Object.fromEntries(config.tiers.orgTiers),
		overload: {
			max_in_flight: overload.maxInFlight,
			org_share: overload.orgShare,
			groups: Object.fromEntries(overload.groups),
			breaker: {
				failures: overload.breaker.failures,
				min_requests: overload.breaker.minRequests,
				failure_rate: overload.breaker.failureRate,
				window_seconds: overload.breaker.windowMs / 1000,
				cooldown_seconds: overload.breaker.cooldownMs / 1000,
				probes: overload.breaker.probes,
			},
		},
		cors_allowed_origins: config.cors.allowedOrigins === "*" ? "*" : [...config.cors.allowedOrigins],
		public_url: config.publicUrl ?? null,
		trust_declared_length: config.trustDeclaredLength,
		secrets: Object.fromEntries(KNOWN_SECRETS.map((name) => [name, typeof env[name] === "string" && env[name] !== ""])),
		bindings: {
			KEYS: env.KEYS !== undefined,
			USAGE: env.USAGE !== undefined,
			ORIGIN: env.ORIGIN !== undefined,
			ASSETS: env.ASSETS !== undefined,
			ANALYTICS: env.ANALYTICS !== undefined,
		},
	};
}

function mapBudgets(budgets: Budgets): Record<string, { day: number | null; month: number | null }> {
	const out: Record<string, { day: number | null; month: number | null }> = {};
	for (const [scope, periods] of Object.entries(budgets)) {
		if (periods === undefined) continue;
		out[scope] = { day: periods.day === undefined ? null : usd(periods.day), month: periods.month === undefined ? null : usd(periods.month) };
	}
	return out;
}
