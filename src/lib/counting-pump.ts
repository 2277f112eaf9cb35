/** Why a counted body was stopped. */
export type CountFailure =
	| { kind: "over-cap"; bytes: number; cap: number }
	| { kind: "longer-than-declared"; bytes: number; declared: number }
	| { kind: "shorter-than-declared"; bytes: number; declared: number };

/** What {@link countingPump} gives the caller. */
export interface CountingPump {
	/** The counted body, for `fetch()`; with a declared length it carries that `Content-Length`. */
	readonly readable: ReadableStream<Uint8Array>;
	/** Settles when the pump stops (the end, a failure or a broken source); the source is free then. */
	readonly done: Promise<void>;
	/** Bytes read from the source so far. */
	bytes(): number;
}

/** The pump reads the source in slices of at least this much (or to the end), at most READ_MAX. */
const READ_MIN = 64 * 1024;
const READ_MAX = 1024 * 1024;

/**
 * Streams `source` into workerd's native `TransformStream` (`FixedLengthStream` when a length was
 * declared, so the origin receives the same `Content-Length`; `IdentityTransformStream`
 * otherwise), counting bytes as they pass, and stops the moment the count passes `cap` or differs
 * from `declared`. The slice that passes a bound is never forwarded, so the origin never receives
 * more than `cap` bytes, and at most one slice (1 MiB) is read past the cap.
 *
 * Why a pump into a native stream rather than a JavaScript `TransformStream`: measured, a JS
 * transform ran every network-sized chunk through the isolate and forwarded at about 3% of a bare
 * pass-through; reading large slices with `readAtLeast` and handing them to a native stream keeps
 * the cost per byte near zero.
 *
 * `onFailure` runs before the counted stream errors. Erroring the stream alone does not fail an
 * upload: workerd was measured ending a subrequest body cleanly when its source stream errored,
 * so a truncated body looked whole to the origin. The caller aborts the upload there, first.
 */
export function countingPump(
	source: ReadableStream<Uint8Array>,
	cap: number,
	declared: number | undefined,
	onFailure: (failure: CountFailure) => void,
): CountingPump {
	const sink = declared === undefined ? new IdentityTransformStream() : new FixedLengthStream(declared);
	const writer = sink.writable.getWriter();
	let bytes = 0;
	const fail = async (failure: CountFailure) => {
		onFailure(failure);
		await writer.abort(new Error(`request body stopped: ${failure.kind} after ${failure.bytes} bytes`)).catch(() => undefined);
	};
	const pump = async () => {
		const next = slices(source);
		try {
			for (;;) {
				const { done, value } = await next.read();
				if (done) break;
				bytes += value.byteLength;
				if (bytes > cap) return await fail({ kind: "over-cap", bytes, cap });
				if (declared !== undefined && bytes > declared) return await fail({ kind: "longer-than-declared", bytes, declared });
				await writer.write(value);
			}
			if (declared !== undefined && bytes < declared) return await fail({ kind: "shorter-than-declared", bytes, declared });
			await writer.close();
		} catch (error) {
			// The client broke off, or the origin stopped reading: fail the upload, never end it cleanly.
			await writer.abort(error).catch(() => undefined);
		} finally {
			next.release();
		}
	};
	return { readable: sink.readable, done: pump(), bytes: () => bytes };
}

/** Reads a stream in large slices: BYOB `readAtLeast` where the stream supports it. */
function slices(source: ReadableStream<Uint8Array>): { read(): Promise<ReadableStreamReadResult<Uint8Array>>; release(): void } {
	let byob: ReadableStreamBYOBReader | undefined;
	try {
		byob = source.getReader({ mode: "byob" });
	} catch {
		byob = undefined;
	}
	if (byob) {
		const reader = byob;
		return { read: () => reader.readAtLeast(READ_MIN, new Uint8Array(READ_MAX)), release: () => reader.releaseLock() };
	}
	const reader = source.getReader();
	return { read: () => reader.read(), release: () => reader.releaseLock() };
}
