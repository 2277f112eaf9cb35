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

/**
 * The headers the origin receives: the client's, minus hop-by-hop fields, minus `host` (the
 * origin URL sets it), and with `request-id` replaced by the guard's own: a client's request-id is
 * never trusted.
 */
export function originRequestHeaders(incoming: Headers, requestId: string): Headers {
	const headers = stripHopByHop(new Headers(incoming));
	headers.delete("host");
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
