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

/** Removes hop-by-hop fields and every field the `Connection` header names. */
export function stripHopByHop(headers: Headers): Headers {
	const named = (headers.get("connection") ?? "")
		.split(",")
		.map((token) => token.trim().toLowerCase())
		.filter(Boolean);
	for (const name of [...HOP_BY_HOP, ...named]) headers.delete(name);
	return headers;
}

/** What the origin is told of the caller, and what of the client's headers it must not see. */
export interface OriginIdentity {
	/** Identity headers to set (name to value); these names are always removed from the client's. */
	readonly set: Record<string, string | null>;
	/** Whether the client's API key may reach the origin. */
	readonly forwardApiKey: boolean;
}

/**
 * The headers the origin receives: the client's, minus hop-by-hop fields, minus `host` (the
 * origin URL sets it), minus the API key (unless the route forwards it), minus any identity header
 * the client sent itself (nobody can pose as another organisation), plus the guard's identity
 * headers, and with `request-id` replaced by the guard's own: a client's is never trusted.
 */
export function originRequestHeaders(incoming: Headers, requestId: string, identity: OriginIdentity): Headers {
	const headers = stripHopByHop(new Headers(incoming));
	headers.delete("host");
	if (!identity.forwardApiKey) {
		headers.delete("x-api-key");
		headers.delete("authorization");
	}
	for (const [name, value] of Object.entries(identity.set)) {
		headers.delete(name);
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
