/** Why a counted body was stopped. */
export type CountFailure =
	| { kind: "over-cap"; bytes: number; cap: number }
	| { kind: "longer-than-declared"; bytes: number; declared: number }
	| { kind: "shorter-than-declared"; bytes: number; declared: number };

/** A byte-counting pass-through. */
export interface CountingStream {
	readonly stream: TransformStream<Uint8Array, Uint8Array>;
	/** Bytes that went through so far (the chunk that broke a bound included). */
	bytes(): number;
}

/**
 * A `TransformStream` that counts the bytes going through it and errors the moment the count
 * passes `cap`, or differs from `declared` (a `Content-Length`). The chunk that passes the cap is
 * never forwarded, so the reader never receives more than `cap` bytes. With `declared` set, the
 * readable side carries `expectedLength`, so a `fetch()` given it sends that `Content-Length`
 * instead of a chunked body (a plain `TransformStream` loses the length).
 *
 * `onFailure` runs before the stream errors. Erroring the stream alone does not fail an upload:
 * workerd was measured ending a subrequest body cleanly when its source stream errored, so a
 * truncated body looked whole to the origin. The caller aborts the upload there, first.
 */
export function countingStream(cap: number, declared: number | undefined, onFailure: (failure: CountFailure) => void): CountingStream {
	let bytes = 0;
	const fail = (controller: TransformStreamDefaultController<Uint8Array>, failure: CountFailure) => {
		onFailure(failure);
		controller.error(new Error(`request body stopped: ${failure.kind} after ${failure.bytes} bytes`));
	};
	const stream = new TransformStream<Uint8Array, Uint8Array>({
		transform(chunk, controller) {
			bytes += chunk.byteLength;
			if (bytes > cap) return fail(controller, { kind: "over-cap", bytes, cap });
			if (declared !== undefined && bytes > declared) return fail(controller, { kind: "longer-than-declared", bytes, declared });
			controller.enqueue(chunk);
		},
		flush(controller) {
			if (declared !== undefined && bytes < declared) fail(controller, { kind: "shorter-than-declared", bytes, declared });
		},
		...(declared === undefined ? {} : { expectedLength: declared }),
	});
	return { stream, bytes: () => bytes };
}
