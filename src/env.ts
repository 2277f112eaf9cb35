import type { UsageObject } from "./limits/usage-object/usage-object";

/**
 * The bindings the guard reads. Written by hand rather than by `wrangler types`: that command types
 * each variable as the literal value in the local `wrangler.toml`, while the guard treats every
 * variable as untrusted data that differs per environment and validates it once (`config/`).
 */
export interface Env {
	/** The route table, as TOML data (`[[vars.ROUTES]]`) or a JSON string. */
	ROUTES?: unknown;
	/** Base URL of the origin, used when no `ORIGIN` service binding is bound. */
	ORIGIN_URL?: unknown;
	/** The origin as a service binding; wins over `ORIGIN_URL`. */
	ORIGIN?: Fetcher;
	/** The API key store (records by key hash). */
	KEYS?: KVNamespace;
	/** Seconds a key lookup is cached in the isolate (0 to 60; default 30). */
	KEY_CACHE_TTL_SECONDS?: unknown;
	/** Names of the identity headers sent to the origin: `{ org, key, workspace }`. */
	IDENTITY_HEADERS?: unknown;
	/** Usage tiers, organisations' tiers and workspace limits (`src/limits/rates/tiers.ts`). */
	TIERS?: unknown;
	ORG_TIERS?: unknown;
	WORKSPACE_LIMITS?: unknown;
	/** `exact` (default) or `lease`. */
	LIMITER_MODE?: unknown;
	/** Load shedding and the origin circuit breaker (`src/overload/overload-config.ts`). */
	OVERLOAD?: unknown;
	/** Which browser pages may read answers (`src/cors/cors-config.ts`). */
	CORS?: unknown;
	/** Secrets a deployed environment cannot run without, e.g. `["ORIGIN_TOKEN"]`. */
	REQUIRED_SECRETS?: unknown;
	/** A secret (`wrangler secret put ORIGIN_TOKEN`) sent to the origin so it can tell the guard's traffic. */
	ORIGIN_TOKEN?: string;
	/** The header that carries ORIGIN_TOKEN (default `x-origin-token`). */
	ORIGIN_TOKEN_HEADER?: unknown;
	/** The guard's public base URL (`https://api.example.com`): where `rewrite_urls` points links. */
	PUBLIC_URL?: unknown;
	/** `true` (default): a valid `Content-Length` body that needs no look inside is forwarded untouched. */
	TRUST_DECLARED_LENGTH?: unknown;
	/** Optional Workers Analytics Engine dataset: one data point per request. */
	ANALYTICS?: AnalyticsEngineDataset;
	/** One usage object per organisation (`src/limits/`). */
	USAGE?: DurableObjectNamespace<UsageObject>;
	/**
	 * A secret (`wrangler secret put ADMIN_TOKEN`): the bearer token of the operator console and its
	 * API under `/_guard/` (`src/admin/`); unset, the console is off and `/_guard/` answers 404.
	 */
	ADMIN_TOKEN?: string;
	/** The console's static files (Workers Static Assets, `[assets]` with `binding = "ASSETS"`). */
	ASSETS?: Fetcher;
}
