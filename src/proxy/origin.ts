import type { GuardConfig } from "../config/guard-config";
import type { Route } from "../config/route-table";

/** Where one request goes: a fetch function and the URL to give it. */
export interface OriginTarget {
	/** The origin's URL for the request's path and query. */
	url(incoming: URL): string;
	fetch: (input: string, init: RequestInit) => Promise<Response>;
	/** The base the origin's own absolute URLs start with (what `rewrite_urls` maps to the guard). */
	base: string;
	/** `service:ORIGIN` for the binding, else the origin's base URL; for logs (it holds no secret). */
	name: string;
}

/**
 * The fixed base of requests to the `ORIGIN` service binding. A binding ignores the host, so the
 * origin is given this one rather than the client's `Host`, which a client chooses: an origin that
 * builds links from its request URL must never build them on a host a client picked.
 */
export const SERVICE_ORIGIN_BASE = "https://origin.internal";

/**
 * Resolves the origin of a route: its own `origin` URL, else the `ORIGIN` service binding, else
 * `ORIGIN_URL`. Path and query pass through unchanged.
 */
export function originTarget(route: Route, config: GuardConfig, binding: Fetcher | undefined): OriginTarget {
	const base = route.origin ?? (binding ? undefined : config.originUrl);
	if (base === undefined && binding) {
		return {
			url: (incoming) => `${SERVICE_ORIGIN_BASE}${incoming.pathname}${incoming.search}`,
			fetch: (input, init) => binding.fetch(input, init),
			base: SERVICE_ORIGIN_BASE,
			name: "service:ORIGIN",
		};
	}
	const root = base ?? "";
	return { url: (incoming) => `${root}${incoming.pathname}${incoming.search}`, fetch: (input, init) => fetch(input, init), base: root, name: root };
}
