import { declaredLength } from "../lib/content-length";

/** A request body as the attempts send it: bytes that can be sent again, or a stream sent once. */
export type ReplayBody =
	| { readonly replayable: true; readonly bytes: Uint8Array | null }
	| { readonly replayable: false; readonly stream: ReadableStream<Uint8Array>; readonly reason: "body-length-unknown" | "body-over-replay-max" };

/**
 * Keeps a body in memory so another origin can be sent it, when its `Content-Length` (which the
 * runtime frames the body by, so it is trusted) is at most `maxBytes`; any other body (chunked,
 * decoded, or larger) is sent once, as it arrives. Never holds more than `maxBytes`: a body that
 * runs past its length is an error, not a larger buffer.
 */
export async function replayBody(body: BodyInit | null | undefined, headers: Headers, maxBytes: number): Promise<ReplayBody> {
	if (body === null || body === undefined) return { replayable: true, bytes: null };
	if (!(body instanceof ReadableStream)) throw new TypeError("the guard forwards request bodies as streams");
	const length = declaredLength(headers);
	if (typeof length !== "number") return { replayable: false, stream: body, reason: "body-length-unknown" };
	if (length > maxBytes) return { replayable: false, stream: body, reason: "body-over-replay-max" };
	const bytes = new Uint8Array(length);
	let filled = 0;
	const reader = (body as ReadableStream<Uint8Array>).getReader();
	for (;;) {
		const { done, value } = await reader.read();
		if (done) break;
		if (filled + value.byteLength > length) {
			await reader.cancel();
			throw new Error(`the request body ran past its Content-Length of ${length} bytes`);
		}
		bytes.set(value, filled);
		filled += value.byteLength;
	}
	if (filled !== length) throw new Error(`the request body ended at ${filled} of its ${length} bytes`);
	return { replayable: true, bytes };
}
