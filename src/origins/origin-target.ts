import type { OriginSpec } from "../config/origin-list";
import { type OriginTarget, SERVICE_ORIGIN_BASE } from "../proxy/origin";

/**
 * The fetch target of one origin of a route's list: its URL through the global `fetch`, or its
 * service binding (found among `bindings` by name; one that is not bound fails like an origin
 * that cannot be reached).
 */
export function specTarget(spec: OriginSpec, bindings: Readonly<Record<string, unknown>>): OriginTarget {
	if (spec.url !== undefined) {
		const root = spec.url;
		return { url: (incoming) => `${root}${incoming.pathname}${incoming.search}`, fetch: (input, init) => fetch(input, init), base: root, name: spec.name };
	}
	const binding = bindings[spec.binding ?? ""] as Fetcher | undefined;
	return {
		url: (incoming) => `${SERVICE_ORIGIN_BASE}${incoming.pathname}${incoming.search}`,
		fetch: (input, init) => (binding ? binding.fetch(input, init) : Promise.reject(new Error(`no service binding named ${spec.binding}`))),
		base: SERVICE_ORIGIN_BASE,
		name: spec.name,
	};
}
