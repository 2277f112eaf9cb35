import type { GuardConfig } from "../config/guard-config";
import type { Route } from "../config/route-table";
import type { Env } from "../env";

/** Where one request goes: a fetch function and the URL to give it. */
export interface OriginTarget {
	url: string;
	fetch: (input: string, init: RequestInit) => Promise<Response>;
	/** `service` for the `ORIGIN` binding, else the origin's base URL; for logs. */
	name: string;
}

/**
 * Resolves the origin of a request: the route's own `origin` URL, else the `ORIGIN` service
 * binding, else `ORIGIN_URL`. Path and query pass through unchanged.
 */
export function originTarget(route: Route, config: GuardConfig, env: Env, incoming: URL): OriginTarget {
	const pathAndQuery = incoming.pathname + incoming.search;
	const base = route.origin ?? (env.ORIGIN ? undefined : config.originUrl);
	if (base === undefined && env.ORIGIN) {
		const binding = env.ORIGIN;
		// A service binding ignores the host, so the origin Worker sees the client-facing URL.
		return { url: incoming.href, fetch: (input, init) => binding.fetch(input, init), name: "service:ORIGIN" };
	}
	return { url: `${base}${pathAndQuery}`, fetch: (input, init) => fetch(input, init), name: base ?? "" };
}
