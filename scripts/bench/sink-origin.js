// The benchmark's origin: reads each request body to its end, counting bytes, and keeps a record of
// the last uploads it saw, so the bench can ask what reached it (GET /__sink/stats) even when the
// Worker in front never relayed the answer.

/** How many upload records are kept; older ones are dropped. */
const KEEP = 500;
const READ_BUFFER = 1024 * 1024;
const READ_AT_LEAST = 64 * 1024;

/** @type {Array<{ seq: number, method: string, path: string, declared: string | null, bytes: number, outcome: "reading" | "complete" | "failed", failure?: string }>} */
const uploads = [];
let seq = 0;

/**
 * @param {Request} request
 */
async function count(request) {
	const entry = {
		seq: ++seq,
		method: request.method,
		path: new URL(request.url).pathname,
		declared: request.headers.get("content-length"),
		bytes: 0,
		/** @type {"reading" | "complete" | "failed"} */
		outcome: "reading",
	};
	uploads.push(entry);
	if (uploads.length > KEEP) uploads.shift();
	// An aborted upload may cancel this request before the read below settles; the signal is then
	// the sink's only witness.
	request.signal?.addEventListener("abort", () => {
		if (entry.outcome !== "reading") return;
		entry.outcome = "failed";
		entry.failure = "the caller aborted the request";
	});
	try {
		if (request.body) {
			// Few, large reads into one reused buffer: a default reader gets 4 KiB chunks, and the
			// sink's own per-chunk cost then capped every Worker in front of it at ~300 MiB/s.
			const reader = request.body.getReader({ mode: "byob" });
			let buffer = new ArrayBuffer(READ_BUFFER);
			for (;;) {
				const { done, value } = await reader.readAtLeast(READ_AT_LEAST, new Uint8Array(buffer));
				if (value) {
					entry.bytes += value.byteLength;
					buffer = value.buffer;
				}
				if (done) break;
			}
		}
		entry.outcome = "complete";
	} catch (error) {
		entry.outcome = "failed";
		entry.failure = String(error);
	}
	return entry;
}

export default {
	/** @param {Request} request */
	async fetch(request) {
		const url = new URL(request.url);
		if (url.pathname === "/__sink/stats") return Response.json({ seq, uploads });
		const entry = await count(request);
		if (entry.outcome === "failed") return Response.json(entry, { status: 502 });
		return Response.json({ bytes: entry.bytes, complete: true, seq: entry.seq });
	},
};
