import { ConfigError } from "./config-error";
import { parseOriginUrl, parseRouteTable, type Route } from "./route-table";

/** The raw configuration values, as a Worker's `env` or `wrangler.toml` holds them. */
export interface RawGuardConfig {
	ROUTES?: unknown;
	ORIGIN_URL?: unknown;
	/** Whether a service binding named `ORIGIN` is bound. */
	hasOriginBinding: boolean;
}

/** The validated configuration the pipeline runs on. */
export interface GuardConfig {
	readonly routes: readonly Route[];
	/** The default origin's base URL when no `ORIGIN` service binding is bound. */
	readonly originUrl: string | undefined;
}

/**
 * Validates the whole configuration once. Throws a {@link ConfigError} naming the bad field.
 * Shared by the Worker and by `npm run check-config`, so both say the same thing.
 */
export function parseGuardConfig(raw: RawGuardConfig): GuardConfig {
	const routes = parseRouteTable(raw.ROUTES);
	const originUrl = raw.ORIGIN_URL === undefined || raw.ORIGIN_URL === "" ? undefined : parseOriginUrl(raw.ORIGIN_URL, "ORIGIN_URL");
	if (!raw.hasOriginBinding && originUrl === undefined) {
		const orphan = routes.findIndex((route) => route.origin === undefined);
		if (orphan !== -1) {
			throw new ConfigError(
				"ORIGIN_URL",
				`ROUTES[${orphan}] has no origin of its own, so set ORIGIN_URL or bind a service named ORIGIN`,
			);
		}
	}
	return { routes, originUrl };
}
