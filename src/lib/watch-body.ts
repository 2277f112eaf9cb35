import { TIMED_OUT } from "./within";

/** How a watched body ended: taken whole, broken off by its source, stalled, or left by its reader. */
export type WatchedEnd = "complete" | "source-failed" | "stalled" | "cancelled";

/** What {@link watchBody} does besides handing the body on. */
export interface WatchOptions {
	/** The body's declared length, kept on the way out (the client gets the same `Content-Length`). */
	readonly length: number | undefined;
	/** The longest the source may send nothing, in ms, before the body is cut off. */
	readonly idleMs: number;
	/** Sees each chunk as it passes (it must not keep it). */
	readonly onChunk?: (chunk: Uint8Array) => void;
	/** Called once, however the body ends, with the bytes handed on. */
	readonly onEnd: (bytes: number, end: WatchedEnd) => void;
}

/**
 * Hands a response body on chunk by chunk, as it arrives, into a native stream (a
 * `FixedLengthStream` when its length is known, so the client gets the same framing), counting
 * bytes and showing each chunk to `onChunk`. A source that sends nothing for `idleMs` is cut off:
 * the origin's request is cancelled and the client's body errors, rather than holding the
 * connection and the request's slot with no bound. The reader going away cancels the source.
 */
export function watchBody(source: ReadableStream<Uint8Array>, options: WatchOptions): ReadableStream<Uint8Array> {
	const { length, idleMs, onChunk, onEnd } = options;
	// A little room, so a small body is handed on whole even before the client starts reading it.
	const sink = length === undefined ? new IdentityTransformStream({ highWaterMark: 64 * 1024 }) : new FixedLengthStream(length, { highWaterMark: 64 * 1024 });
	const writer = sink.writable.getWriter();
	const reader = source.getReader();
	let bytes = 0;
	// One timer per quiet spell rather than one per read: it re-arms itself for what is left.
	let lastRead = Date.now();
	let timer: ReturnType<typeof setTimeout> | null = null;
	let quiet: (value: typeof TIMED_OUT) => void = () => undefined;
	const stalled = new Promise<typeof TIMED_OUT>((resolve) => {
		quiet = resolve;
	});
	const check = () => {
		const silent = Date.now() - lastRead;
		if (silent >= idleMs) quiet(TIMED_OUT);
		else timer = setTimeout(check, idleMs - silent);
	};
	timer = setTimeout(check, idleMs);
	const pump = async (): Promise<WatchedEnd> => {
		for (;;) {
			let next: ReadableStreamReadResult<Uint8Array> | typeof TIMED_OUT;
			try {
				next = await Promise.race([reader.read(), stalled]);
			} catch {
				return "source-failed";
			}
			lastRead = Date.now();
			if (next === TIMED_OUT) return "stalled";
			if (next.done) return "complete";
			onChunk?.(next.value);
			try {
				await writer.write(next.value);
			} catch {
				return "cancelled";
			}
			bytes += next.value.byteLength;
		}
	};
	pump().then(async (end) => {
		if (timer) clearTimeout(timer);
		if (end === "complete") await writer.close().catch(() => undefined);
		else {
			await reader.cancel(`edge-guard: response body ${end}`).catch(() => undefined);
			await writer.abort(new Error(`response body ${end}`)).catch(() => undefined);
		}
		reader.releaseLock();
		onEnd(bytes, end);
	});
	return sink.readable;
}
