/** How much of an unwanted upload the guard reads and discards, at most. */
export interface DrainBounds {
	maxBytes: number;
	maxMs: number;
}

/** What a drain did: bytes discarded, time taken, and why it stopped. */
export interface DrainResult {
	bytes: number;
	ms: number;
	stopped: "end" | "max-bytes" | "max-time" | "error";
}

/**
 * Reads and discards the rest of a body, within bounds, then cancels whatever is left. This is
 * nginx's "lingering close": an HTTP/1.1 client still sending when the server answers and closes
 * can see a connection reset instead of the answer; reading the rest for a bounded time and size
 * lets the answer arrive, and the bounds keep an endless upload from holding the guard.
 */
export async function drainBody(body: ReadableStream<Uint8Array>, bounds: DrainBounds, now: () => number = Date.now): Promise<DrainResult> {
	const started = now();
	const reader = body.getReader();
	let bytes = 0;
	let stopped: DrainResult["stopped"] = "end";
	let timer: ReturnType<typeof setTimeout> | null = null;
	const deadline = new Promise<"max-time">((resolve) => {
		timer = setTimeout(() => resolve("max-time"), bounds.maxMs);
	});
	try {
		for (;;) {
			const next = await Promise.race([reader.read(), deadline]);
			if (next === "max-time") {
				stopped = "max-time";
				break;
			}
			if (next.done) break;
			bytes += next.value.byteLength;
			// A busy stream can starve the timer, so the clock is checked between reads too.
			if (now() - started >= bounds.maxMs) {
				stopped = "max-time";
				break;
			}
			if (bytes >= bounds.maxBytes) {
				stopped = "max-bytes";
				break;
			}
		}
	} catch {
		stopped = "error";
	} finally {
		clearTimeout(timer);
		if (stopped !== "end") await reader.cancel("edge-guard: stopped reading an unwanted upload").catch(() => undefined);
		reader.releaseLock();
	}
	return { bytes, ms: now() - started, stopped };
}
