import { mergeVary } from "../lib/merge-vary";

/** RFC 9110 §7.6.1: connection-specific fields a proxy must not forward. */
const HOP_BY_HOP: ReadonlySet<string> = new Set([
	"connection",
	"keep-alive",
	"proxy-authenticate",
	"proxy-authorization",
	"proxy-connection",
	"te",
	"trailer",
	"transfer-encoding",
	"upgrade",
]);

/**
 * The fields a message's `Connection` header names (RFC 9110 §7.6.1: also hop-by-hop), except
 * `protect`: fields the guard validated or sets itself, which a client must not be able to remove
 * on the way to the origin by naming them in `Connection`.
 */
function namedByConnection(headers: Headers, protect: ReadonlySet<string>): ReadonlySet<string> {
	const connection = headers.get("connection");
	if (connection === null) return NO_NAMES;
	const named = new Set<string>();
	for (const token of connection.split(",")) {
		const name = token.trim().toLowerCase();
		if (name !== "" && !protect.has(name)) named.add(name);
	}
	return named;
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
 * `x_guard_org_id` as `X-Guard-Org-Id`), minus `drop` (fields that no longer describe the body),
 * plus the guard's identity headers, and with `request-id` replaced by the guard's own: a client's
 * is never trusted (nor its `x-guard-attempt`).
 */
export function originRequestHeaders(incoming: Headers, requestId: string, identity: OriginIdentity, drop: readonly string[] = []): Headers {
	const owned = new Set(["request-id", ATTEMPT_HEADER, ...Object.keys(identity.set)]);
	const named = namedByConnection(incoming, new Set([...VALIDATED_HEADERS, ...owned]));
	// A native copy, then one pass over the names: workerd converts a list of pairs field by field, far slower.
	const headers = new Headers(incoming);
	for (const name of incoming.keys()) {
		if (
			HOP_BY_HOP.has(name) ||
			named.has(name) ||
			name === "host" ||
			drop.includes(name) ||
			(!identity.forwardApiKey && (name === "x-api-key" || name === "authorization")) ||
			owned.has(name.includes("_") ? name.replaceAll("_", "-") : name)
		) {
			headers.delete(name);
		}
	}
	for (const [name, value] of Object.entries(identity.set)) {
		if (value !== null) headers.set(name, value);
	}
	headers.set("request-id", requestId);
	return headers;
}

/**
 * The headers the client receives from a proxied response: the origin's, minus hop-by-hop
 * fields, minus any `access-control-*` (the guard's CORS configuration alone decides which pages
 * may read), with `own` set over the origin's copies (the guard's rate-limit, organisation and
 * CORS headers win; `own.vary` is merged into the origin's `vary`) and `request-id` the guard's.
 * An origin that keeps request IDs of its own still gets its ID to the client as
 * `x-origin-request-id`.
 */
export function clientResponseHeaders(upstream: Headers, requestId: string, own: Readonly<Record<string, string>> = NO_FIELDS): Headers {
	const named = namedByConnection(upstream, NO_NAMES);
	const headers = new Headers(upstream);
	for (const name of upstream.keys()) {
		if (HOP_BY_HOP.has(name) || named.has(name) || name.startsWith("access-control-")) headers.delete(name);
	}
	const originId = upstream.get("request-id");
	if (originId !== null && originId !== requestId) headers.set("x-origin-request-id", originId);
	headers.set("request-id", requestId);
	for (const name in own) {
		const value = own[name] as string;
		headers.set(name, name === "vary" ? mergeVary(upstream.get("vary"), value) : value);
	}
	return headers;
}

const NO_FIELDS: Readonly<Record<string, string>> = Object.freeze({});
