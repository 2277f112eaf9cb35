// Minimal Workers for the interposed-stream experiment (scripts/bench/interposed-stream.mjs): each
// forwards the upload to `ORIGIN` and differs only in what stands between `request.body` and the
// origin fetch, chosen by the MODE variable. Nothing here counts or checks anything.
//   bare          env.ORIGIN.fetch(request): the request itself, as a bare pass-through does
//   new-headers   fetch(url, { headers: a copy with one header more, body: request.body }): the untouched body
//   js-transform  request.body.pipeThrough(new TransformStream()): a JavaScript identity transform
//   identity      request.body.pipeTo(IdentityTransformStream.writable): a native stream, no JS per chunk
//   fixed-length  request.body.pipeTo(FixedLengthStream(content-length).writable): the same, length kept
//   pump          a JavaScript loop: BYOB readAtLeast of 1 MiB slices written to a FixedLengthStream
//   pump-scan     the same, each slice also searched for a quote byte (what a JSON scan costs at least)
//   tee-scan      request.body.tee(): one branch to the origin untouched, the other read by JavaScript and searched

/**
 * @param {Request} request
 * @param {string} mode
 * @returns {ReadableStream<Uint8Array> | null}
 */
function interpose(request, mode) {
	const body = request.body;
	if (body === null || mode === "new-headers") return body;
	if (mode === "js-transform") return body.pipeThrough(new TransformStream());
	if (mode === "tee-scan") {
		const [forwarded, read] = body.tee();
		drain(read, true).catch(() => undefined);
		return forwarded;
	}
	if (mode === "pump" || mode === "pump-scan") return pump(body, Number(request.headers.get("content-length")), mode === "pump-scan");
	const length = Number(request.headers.get("content-length"));
	const stream = mode === "fixed-length" && Number.isSafeInteger(length) ? new FixedLengthStream(length) : new IdentityTransformStream();
	body.pipeTo(stream.writable).catch(() => undefined);
	return stream.readable;
}

const SLICE = 1024 * 1024;

/** Where a quote next occurs, over the whole slice: the least a JSON scan of a long string does. */
function search(/** @type {Uint8Array} */ chunk) {
	let found = 0;
	for (let at = chunk.indexOf(0x22); at >= 0; at = chunk.indexOf(0x22, at + 1)) found++;
	return found;
}

/** Reads a stream in BYOB slices; `scan` searches each. */
async function drain(/** @type {ReadableStream<Uint8Array>} */ stream, /** @type {boolean} */ scan) {
	const reader = stream.getReader({ mode: "byob" });
	let buffer = new ArrayBuffer(SLICE);
	for (;;) {
		const { done, value } = await reader.readAtLeast(SLICE, new Uint8Array(buffer));
		if (done || value === undefined) return;
		if (scan) search(value);
		buffer = value.buffer;
	}
}

/** A JavaScript pump into a native FixedLengthStream, two slices in flight. */
function pump(/** @type {ReadableStream<Uint8Array>} */ body, /** @type {number} */ length, /** @type {boolean} */ scan) {
	const sink = new FixedLengthStream(length);
	const writer = sink.writable.getWriter();
	const reader = body.getReader({ mode: "byob" });
	(async () => {
		let writing = Promise.resolve();
		for (;;) {
			const { done, value } = await reader.readAtLeast(SLICE, new Uint8Array(new ArrayBuffer(SLICE)));
			if (done || value === undefined) break;
			if (scan) search(value);
			await writing;
			writing = writer.write(value);
		}
		await writing;
		await writer.close();
	})().catch((error) => writer.abort(error).catch(() => undefined));
	return sink.readable;
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
