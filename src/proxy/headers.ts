/** RFC 9110 §7.6.1: connection-specific fields a proxy must not forward. */
const HOP_BY_HOP = [
	"connection",
	"keep-alive",
	"proxy-authenticate",
	"proxy-authorization",
	"proxy-connection",
	"te",
	"trailer",
	"transfer-encoding",
	"upgrade",
];

/**
 * Removes hop-by-hop fields and every field the `Connection` header names, except `protect`:
 * fields the guard validated or sets itself, which a client must not be able to remove on the
 * way to the origin by naming them in `Connection`.
 */
export function stripHopByHop(headers: Headers, protect: ReadonlySet<string> = NO_NAMES): Headers {
	const named = (headers.get("connection") ?? "")
		.split(",")
		.map((token) => token.trim().toLowerCase())
		.filter((name) => name !== "" && !protect.has(name));
	for (const name of [...HOP_BY_HOP, ...named]) headers.delete(name);
	return headers;
}

const NO_NAMES: ReadonlySet<string> = new Set();

/**
 * Fields the guard validates before forwarding; `Connection` cannot take them away from the
 * origin, or the origin would act on a request the guard did not check.
 */
export const VALIDATED_HEADERS: readonly string[] = ["anthropic-version", "anthropic-beta", "content-type", "content-length", "content-encoding"];

/**
 * The header that tells an origin of a route with several origins which attempt a request is
 * (`1`, `2`, ...; README "Origins"). Only the guard sets it: a client's copy is always dropped.
 */
export const ATTEMPT_HEADER = "x-guard-attempt";

/** What the origin is told of the caller, and what of the client's headers it must not see. */
export interface OriginIdentity {
	/** Identity headers to set (name to value); these names are always removed from the client's. */
	readonly set: Record<string, string | null>;
	/** Whether the client's API key may reach the origin. */
	readonly forwardApiKey: boolean;
}

/**
 * The headers the origin receives: the client's, minus hop-by-hop fields, minus `host` (the
 * origin URL sets it), minus the API key (unless the route forwards it), minus any header the
 * guard sets itself in every spelling (`-` or `_`, any case: CGI and WSGI origins read
 * `x_guard_org_id` as `X-Guard-Org-Id`), plus the guard's identity headers, and with `request-id`
 * replaced by the guard's own: a client's is never trusted (nor its `x-guard-attempt`).
 */
export function originRequestHeaders(incoming: Headers, requestId: string, identity: OriginIdentity): Headers {
	const owned = new Set(["request-id", ATTEMPT_HEADER, ...Object.keys(identity.set)]);
	const headers = stripHopByHop(new Headers(incoming), new Set([...VALIDATED_HEADERS, ...owned]));
	headers.delete("host");
	if (!identity.forwardApiKey) {
		headers.delete("x-api-key");
		headers.delete("authorization");
	}
	for (const name of [...headers.keys()]) {
		if (owned.has(name.replaceAll("_", "-"))) headers.delete(name);
	}
	for (const [name, value] of Object.entries(identity.set)) {
		if (value !== null) headers.set(name, value);
	}
	headers.set("request-id", requestId);
	return headers;
}

/** The headers the client receives from a proxied response, before the guard adds its own. */
export function clientResponseHeaders(upstream: Headers, requestId: string): Headers {
	const headers = stripHopByHop(new Headers(upstream));
	const originId = headers.get("request-id");
	// An origin that keeps IDs of its own still gets them to the client, under another name.
	if (originId !== null && originId !== requestId) headers.set("x-origin-request-id", originId);
	headers.set("request-id", requestId);
	return headers;
}
