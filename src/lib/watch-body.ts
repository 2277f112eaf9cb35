/** How a watched body ended: taken whole, broken off by its source, stalled, left unread by its reader, or left by it. */
export type WatchedEnd = "complete" | "source-failed" | "stalled" | "client-not-reading" | "cancelled";

/** What {@link watchBody} does besides handing the body on. */
export interface WatchOptions {
	/** The body's declared length, kept on the way out (the client gets the same `Content-Length`). */
	readonly length: number | undefined;
	/** The longest the source may send nothing, in ms, before the body is cut off (`stalled`). */
	readonly idleMs: number;
	/** The longest a chunk may wait for the reader to take it, in ms, before the body is cut off (`client-not-reading`). */
	readonly clientIdleMs: number;
	/** Sees each chunk as it passes (it must not keep it). */
	readonly onChunk?: (chunk: Uint8Array) => void;
	/** Called once, however the body ends, with the bytes handed on. */
	readonly onEnd: (bytes: number, end: WatchedEnd) => void;
}

/**
 * Hands a response body on chunk by chunk, as it arrives, into a native stream (a
 * `FixedLengthStream` when its length is known, so the client gets the same framing), counting
 * bytes and showing each chunk to `onChunk`. The body is cut off (the origin's request cancelled,
 * the client's body errored) when the source sends nothing for `idleMs`, or when the client takes
 * nothing for `clientIdleMs` while a chunk waits for it: either would otherwise hold the connection
 * and the request's slot with no bound. The reader going away cancels the source.
 */
export function watchBody(source: ReadableStream<Uint8Array>, options: WatchOptions): ReadableStream<Uint8Array> {
	const { length, idleMs, clientIdleMs, onChunk, onEnd } = options;
	// A little room, so a small body is handed on whole even before the client starts reading it.
	const sink = length === undefined ? new IdentityTransformStream({ highWaterMark: 64 * 1024 }) : new FixedLengthStream(length, { highWaterMark: 64 * 1024 });
	const writer = sink.writable.getWriter();
	const reader = source.getReader();
	let bytes = 0;
	// What the pump waits on and since when: the only per-chunk cost of both bounds is this timestamp.
	let waitingOnClient = false;
	let since = Date.now();
	let cut: (end: "stalled" | "client-not-reading") => void = () => undefined;
	const cutOff = new Promise<"stalled" | "client-not-reading">((resolve) => {
		cut = resolve;
	});
	// One timer per quiet spell rather than one per chunk: it re-arms itself for what is left, at
	// most the shorter bound ahead, so a switch to the shorter wait is seen in time.
	const shortest = Math.min(idleMs, clientIdleMs);
	let timer: ReturnType<typeof setTimeout> | null = null;
	const check = () => {
		const bound = waitingOnClient ? clientIdleMs : idleMs;
		const quiet = Date.now() - since;
		if (quiet >= bound) cut(waitingOnClient ? "client-not-reading" : "stalled");
		else timer = setTimeout(check, Math.min(bound - quiet, shortest));
	};
	timer = setTimeout(check, shortest);
	const pump = async (): Promise<WatchedEnd> => {
		for (;;) {
			waitingOnClient = false;
			since = Date.now();
			let next: ReadableStreamReadResult<Uint8Array> | "stalled" | "client-not-reading";
			try {
				next = await Promise.race([reader.read(), cutOff]);
			} catch {
				return "source-failed";
			}
			if (typeof next === "string") return next;
			if (next.done) return "complete";
			onChunk?.(next.value);
			waitingOnClient = true;
			since = Date.now();
			let wrote: unknown;
			try {
				wrote = await Promise.race([writer.write(next.value), cutOff]);
			} catch {
				return "cancelled";
			}
			if (wrote === "stalled" || wrote === "client-not-reading") return wrote;
			bytes += next.value.byteLength;
		}
	};
	pump().then(async (end) => {
		if (timer) clearTimeout(timer);
		if (end === "complete") await writer.close().catch(() => undefined);
		else {
			// Not awaited: a write the client never takes may hold the abort, and the end must not wait on the client.
			writer.abort(new Error(`response body ${end}`)).catch(() => undefined);
			await reader.cancel(`edge-guard: response body ${end}`).catch(() => undefined);
		}
		reader.releaseLock();
		onEnd(bytes, end);
	});
	return sink.readable;
}
