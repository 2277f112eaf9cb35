import { ConfigError } from "../config/config-error";
import { parseGuardConfig } from "../config/guard-config";
import type { Env } from "../env";
import { buildBrokenRouter, buildGuardRouter, type GuardRouter } from "./guard-router";

let cached: { routes: unknown; originUrl: unknown; hasOrigin: boolean; router: GuardRouter } | undefined;

/**
 * The pipeline for an environment's configuration, validated once and kept for as long as the
 * isolate sees the same configuration values. An invalid configuration gives a pipeline that
 * answers `500 api_error` naming the bad field, and logs it once.
 */
export function routerForEnv(env: Env): GuardRouter {
	const hasOrigin = env.ORIGIN !== undefined;
	if (cached && cached.routes === env.ROUTES && cached.originUrl === env.ORIGIN_URL && cached.hasOrigin === hasOrigin) {
		return cached.router;
	}
	let router: GuardRouter;
	try {
		router = buildGuardRouter(parseGuardConfig({ ROUTES: env.ROUTES, ORIGIN_URL: env.ORIGIN_URL, hasOriginBinding: hasOrigin }));
	} catch (error) {
		if (!(error instanceof ConfigError)) throw error;
		console.error({ message: "invalid configuration", field: error.field, problem: error.message });
		router = buildBrokenRouter(error);
	}
	cached = { routes: env.ROUTES, originUrl: env.ORIGIN_URL, hasOrigin, router };
	return router;
}
