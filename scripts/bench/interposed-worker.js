// Minimal Workers for the interposed-stream experiment (scripts/bench/interposed-stream.mjs): each
// forwards the upload to `ORIGIN` and differs only in what stands between `request.body` and the
// origin fetch, chosen by the MODE variable. Nothing here counts or checks anything.
//   bare          env.ORIGIN.fetch(request): the request itself, as a bare pass-through does
//   new-headers   fetch(url, { headers: a copy with one header more, body: request.body }): the untouched body
//   js-transform  request.body.pipeThrough(new TransformStream()): a JavaScript identity transform
//   identity      request.body.pipeTo(IdentityTransformStream.writable): a native stream, no JS per chunk
//   fixed-length  request.body.pipeTo(FixedLengthStream(content-length).writable): the same, length kept

/**
 * @param {Request} request
 * @param {string} mode
 * @returns {ReadableStream<Uint8Array> | null}
 */
function interpose(request, mode) {
	const body = request.body;
	if (body === null || mode === "new-headers") return body;
	if (mode === "js-transform") return body.pipeThrough(new TransformStream());
	const length = Number(request.headers.get("content-length"));
	const stream = mode === "fixed-length" && Number.isSafeInteger(length) ? new FixedLengthStream(length) : new IdentityTransformStream();
	body.pipeTo(stream.writable).catch(() => undefined);
	return stream.readable;
}

export default {
	/** @param {Request} request @param {{ ORIGIN: Fetcher, MODE: string }} env */
	fetch(request, env) {
		if (env.MODE === "bare") return env.ORIGIN.fetch(request);
		const headers = new Headers(request.headers);
		headers.set("x-interposed", env.MODE);
		return env.ORIGIN.fetch(request.url, { method: request.method, headers, body: interpose(request, env.MODE) });
	},
};
