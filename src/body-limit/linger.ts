import { type DrainBounds, drainBody } from "../lib/drain";
import type { RequestState } from "../lib/request-state";

/**
 * The lingering drain's bounds (README, "Lingering close"): after refusing an upload, the guard
 * reads and discards at most this much more of it, for at most this long, before it ends the
 * response.
 */
export const LINGER_BOUNDS: DrainBounds = { maxBytes: 64 * 1024 * 1024, maxMs: 10_000 };

/**
 * Discards the rest of an upload once `released` settles (the source is free to read), within
 * {@link LINGER_BOUNDS}, and records what it did in the request's decisions.
 */
export function lingerAfter(source: ReadableStream<Uint8Array>, released: Promise<unknown>, state: RequestState): Promise<void> {
	return released
		.then(() => drainBody(source, LINGER_BOUNDS))
		.then((drained) => {
			state.decisions.linger = drained;
		})
		.catch(() => undefined);
}

/**
 * For an answer given before the request body was read (a 401, a 404, a declared-length 413):
 * the drain to hold the answer open for, or `undefined` when there is nothing to drain. A client
 * that sent `Expect: 100-continue` waits for a go-ahead and never sends its body, so it has none.
 */
export function lingerOnUnreadBody(request: Request, state: RequestState): Promise<void> | undefined {
	const source = request.body;
	if (source === null || request.bodyUsed || source.locked) return undefined;
	if ((request.headers.get("expect") ?? "").toLowerCase() === "100-continue") return undefined;
	return lingerAfter(source, Promise.resolve(), state);
}
