// Minimal Workers for the primitives experiment (scripts/bench/primitives.mjs): what each runtime
// primitive a proxy uses costs on a small request, on top of a bare pass-through. STEPS (a variable,
// comma-separated) says which the Worker does:
//   rebuild   forward a new request (url, method, copied headers with one more, request.body) instead of `request`
//   rewrap    answer `new Response(upstream.body, upstream)` with one header set, instead of `upstream`
//   pump      hand the response body on through a native stream, reading and writing in JavaScript
//   pipe      hand the response body on through a native stream with pipeTo (no JavaScript per chunk)
//   signal    an AbortController, AbortSignal.any with request.signal, a setTimeout/clearTimeout pair
//   digest    SHA-256 of the x-api-key header, as hex
//   log       console.log of a 15-field object, as a request log line
//   wait      ctx.waitUntil a promise settled when the response body has been handed on
//   asyncs    ten chained awaits, as a staged pipeline makes

/** @param {Headers} incoming */
function copyHeaders(incoming) {
	const headers = new Headers(incoming);
	headers.delete("host");
	headers.set("request-id", "req_0000000000000000000000");
	return headers;
}

/** @param {string} key */
async function digest(key) {
	const bytes = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key));
	return [...new Uint8Array(bytes)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

/**
 * A FixedLengthStream when the length is known, else an IdentityTransformStream (a service
 * binding's response to a string body has no content-length header for JavaScript to see).
 * @param {number | undefined} length
 */
function nativeStream(length) {
	return length === undefined ? new IdentityTransformStream() : new FixedLengthStream(length);
}

/**
 * @param {ReadableStream<Uint8Array>} source
 * @param {number | undefined} length
 * @param {() => void} done
 */
function pumpBody(source, length, done) {
	const sink = nativeStream(length);
	const writer = sink.writable.getWriter();
	const reader = source.getReader();
	(async () => {
		for (;;) {
			const { done: end, value } = await reader.read();
			if (end) break;
			await writer.write(value);
		}
		await writer.close();
	})()
		.catch(() => undefined)
		.finally(done);
	return sink.readable;
}

export default {
	/** @param {Request} request @param {{ ORIGIN: Fetcher, STEPS: string }} env @param {ExecutionContext} ctx */
	async fetch(request, env, ctx) {
		const steps = new Set(env.STEPS.split(",").filter(Boolean));
		if (steps.has("asyncs")) for (let i = 0; i < 10; i++) await Promise.resolve(i);
		let key = "";
		if (steps.has("digest")) key = await digest(request.headers.get("x-api-key") ?? "");
		let timer;
		let signal;
		if (steps.has("signal")) {
			const abort = new AbortController();
			signal = AbortSignal.any([abort.signal, ...(request.signal ? [request.signal] : [])]);
			timer = setTimeout(() => abort.abort(), 600_000);
		}
		const upstream = steps.has("rebuild")
			? await env.ORIGIN.fetch(request.url, { method: request.method, headers: copyHeaders(request.headers), body: request.body, redirect: "manual", signal })
			: await env.ORIGIN.fetch(request, signal ? { signal } : undefined);
		if (timer !== undefined) clearTimeout(timer);
		let bodyDone = () => undefined;
		const ended = new Promise((resolve) => {
			bodyDone = () => resolve(undefined);
		});
		let body = upstream.body;
		const declared = upstream.headers.get("content-length");
		const length = declared === null ? undefined : Number(declared);
		if (body !== null && (steps.has("pump") || steps.has("pipe"))) {
			if (steps.has("pump")) body = pumpBody(body, length, bodyDone);
			else {
				const sink = nativeStream(length);
				body.pipeTo(sink.writable).catch(() => undefined).finally(bodyDone);
				body = sink.readable;
			}
		} else bodyDone();
		const line = { request_id: "req_0", method: request.method, path: new URL(request.url).pathname, route: "r", origin: "service:ORIGIN", org_id: "org", key_id: key.slice(0, 8), status: upstream.status, error_type: null, bytes_in: 0, bytes_out: length ?? null, origin_ms: 1, duration_ms: 1, decisions: { auth: { outcome: "admitted" } }, extra: null };
		if (steps.has("log")) {
			if (steps.has("wait")) ctx.waitUntil(ended.then(() => console.log(line)));
			else console.log(line);
		} else if (steps.has("wait")) ctx.waitUntil(ended);
		if (!steps.has("rewrap") && body === upstream.body) return upstream;
		const response = new Response(body, upstream);
		response.headers.set("request-id", "req_0000000000000000000000");
		return response;
	},
};
