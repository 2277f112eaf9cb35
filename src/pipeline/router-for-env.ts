import { ConfigError } from "../config/config-error";
import { KNOWN_SECRETS, parseGuardConfig, type RawGuardConfig } from "../config/guard-config";
import type { Env } from "../env";
import { buildBrokenRouter, buildGuardRouter, type GuardRouter } from "./guard-router";

let cached: { raw: RawGuardConfig; router: GuardRouter } | undefined;

function rawConfig(env: Env): RawGuardConfig {
	return {
		ROUTES: env.ROUTES,
		ORIGIN_URL: env.ORIGIN_URL,
		KEY_CACHE_TTL_SECONDS: env.KEY_CACHE_TTL_SECONDS,
		IDENTITY_HEADERS: env.IDENTITY_HEADERS,
		TIERS: env.TIERS,
		ORG_TIERS: env.ORG_TIERS,
		WORKSPACE_LIMITS: env.WORKSPACE_LIMITS,
		LIMITER_MODE: env.LIMITER_MODE,
		OVERLOAD: env.OVERLOAD,
		CORS: env.CORS,
		REQUIRED_SECRETS: env.REQUIRED_SECRETS,
		ORIGIN_TOKEN_HEADER: env.ORIGIN_TOKEN_HEADER,
		PUBLIC_URL: env.PUBLIC_URL,
		TRUST_DECLARED_LENGTH: env.TRUST_DECLARED_LENGTH,
		presentSecrets: KNOWN_SECRETS.filter((name) => typeof env[name] === "string" && env[name] !== "").join(","),
		hasOriginBinding: env.ORIGIN !== undefined,
		serviceBindings: serviceBindingNames(env),
		hasKeysBinding: env.KEYS !== undefined,
	};
}

/** {@link serviceBindingNames} by `env` object: the runtime hands an isolate the same one on every request. */
const bindingNamesOf = new WeakMap<object, string>();

/** The bindings that can be fetched (service bindings, and ASSETS): what an `origins` entry may name. */
function serviceBindingNames(env: Env): string {
	let names = bindingNamesOf.get(env);
	if (names === undefined) {
		names = Object.entries(env as unknown as Record<string, unknown>)
			.filter(([, value]) => typeof (value as { fetch?: unknown } | null)?.fetch === "function")
			.map(([name]) => name)
			.sort()
			.join(",");
		bindingNamesOf.set(env, names);
	}
	return names;
}

function sameRaw(a: RawGuardConfig, b: RawGuardConfig): boolean {
	return (Object.keys(a) as (keyof RawGuardConfig)[]).every((key) => a[key] === b[key]);
}

/**
 * The pipeline for an environment's configuration, validated once and kept for as long as the
 * isolate sees the same configuration values. An invalid configuration gives a pipeline that
 * answers `500 api_error` with a fixed message, and logs the bad field once.
 */
export function routerForEnv(env: Env): GuardRouter {
	const raw = rawConfig(env);
	if (cached && sameRaw(cached.raw, raw)) return cached.router;
	let router: GuardRouter;
	try {
		router = buildGuardRouter(parseGuardConfig(raw));
	} catch (error) {
		if (!(error instanceof ConfigError)) throw error;
		console.error({ message: "invalid configuration", field: error.field, problem: error.message });
		router = buildBrokenRouter(error);
	}
	cached = { raw, router };
	return router;
}
