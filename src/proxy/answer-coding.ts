/** An origin's answer as the guard can read it, and whether its body is still in a coding the guard cannot read. */
export interface ReadableAnswer {
	/** The answer, with headers that describe the body it holds. */
	readonly upstream: Response;
	/** The body is still in the origin's `Content-Encoding` and the guard cannot decode it: it passes untouched. */
	readonly opaque: boolean;
}

/** Codings workerd's `fetch` decodes as the body is read (`encodeResponseBody: "automatic"`), by exact header value. */
const DECODED_BY_FETCH = new Set(["gzip", "br"]);
/** Codings the guard decodes itself, by lower-cased header value. */
const DECODABLE: ReadonlyMap<string, "gzip" | "deflate"> = new Map([
	["gzip", "gzip"],
	["x-gzip", "gzip"],
	["deflate", "deflate"],
]);

/**
 * Makes an origin's encoded answer one the guard can read and hand on. workerd's `fetch` decodes a
 * `gzip` or `br` body as it is read but keeps the origin's `Content-Encoding` and `Content-Length`,
 * which then describe bytes nobody here holds: kept, the client would get a decoded body labelled
 * as encoded, framed by the encoded length. Those two headers are dropped; a `deflate` (or
 * differently spelt `gzip`) body, which `fetch` leaves as sent, is decoded here. Any other coding
 * (a chain, `zstd`, an upper-case `BR`) is left as the origin sent it and marked `opaque`.
 */
export function readableAnswer(upstream: Response): ReadableAnswer {
	const coding = upstream.headers.get("content-encoding")?.trim();
	if (upstream.body === null || coding === undefined || coding === "" || coding.toLowerCase() === "identity") return { upstream, opaque: false };
	let body: ReadableStream<Uint8Array> = upstream.body;
	if (!DECODED_BY_FETCH.has(coding)) {
		const format = DECODABLE.get(coding.toLowerCase());
		if (format === undefined) return { upstream, opaque: true };
		body = body.pipeThrough(new DecompressionStream(format));
	}
	const headers = new Headers(upstream.headers);
	headers.delete("content-encoding");
	headers.delete("content-length");
	return { upstream: new Response(body, { status: upstream.status, statusText: upstream.statusText, headers }), opaque: false };
}
