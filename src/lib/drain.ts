import { TIMED_OUT, within } from "./within";

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
	let elapsed = 0;
	try {
		for (;;) {
			const next = await within(reader.read(), Math.max(0, bounds.maxMs - elapsed));
			if (next === TIMED_OUT) {
				stopped = "max-time";
				break;
			}
			if (next.done) break;
			bytes += next.value.byteLength;
			// A busy stream can starve the timer, so the clock is checked between reads too.
			elapsed = now() - started;
			if (elapsed >= bounds.maxMs) {
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
		if (stopped !== "end") await reader.cancel("edge-guard: stopped reading an unwanted upload").catch(() => undefined);
		reader.releaseLock();
	}
	return { bytes, ms: now() - started, stopped };
}
