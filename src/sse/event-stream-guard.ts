import { FrameScanner, findErrorEvent } from "./sse-frames";

/** Why a guarded event stream stopped before the origin finished it. */
export type StreamFailure =
	/** The origin's body stream errored (the connection was lost). */
	| { kind: "origin-failed"; cause: unknown }
	/** The origin ended cleanly, but mid-frame. */
	| { kind: "truncated"; heldBytes: number }
	/** An incomplete frame grew past `maxFrameBytes` (malformed framing). */
	| { kind: "frame-too-large"; limit: number }
	/** The origin sent nothing for `idleTimeoutMs`. */
	| { kind: "idle-timeout"; idleMs: number };

/** How a guarded event stream ended; given to `onEnd` once. */
export interface StreamOutcome {
	/** `cancelled`: the client went away; `client-not-reading`: it took nothing for `clientIdleMs` and was let go. */
	kind: "complete" | "failed" | "cancelled" | "client-not-reading";
	failure?: StreamFailure;
	/** Bytes delivered to the client, pings and the error event included. */
	bytesOut: number;
	pings: number;
	/** `error.type` of an `event: error` frame the origin itself sent, if any. */
	originErrorType?: string;
}

/** What {@link guardEventStream} needs from its caller. */
export interface EventStreamGuardOptions {
	requestId: string;
	/** Send a ping after this much origin silence; 0 = never. */
	pingAfterMs: number;
	/** Fail with `idle-timeout` after this much origin silence; 0 = never. */
	idleTimeoutMs: number;
	/** Cut the stream off when an event waits this long for the client to take it; 0 = never. Pings are not progress. */
	clientIdleTimeoutMs?: number;
	/** The largest incomplete frame held back; a whole frame in one chunk may be larger. */
	maxFrameBytes: number;
	/** The `type` and `message` of the error event sent to the client on a failure. */
	errorFor(failure: StreamFailure): { type: string; message: string };
	/** Called exactly once, however the stream ends. */
	onEnd?(outcome: StreamOutcome): void;
	/** The client cancelled: the caller aborts the origin fetch here. */
	onCancel?(reason: unknown): void;
}

const PING = new TextEncoder().encode('event: ping\ndata: {"type": "ping"}\n\n');

/**
 * Wraps an origin's `text/event-stream` body so the client only ever receives whole events: each
 * chunk is forwarded at once up to its last frame end, and only an incomplete frame is held back.
 * A stream that ends at a frame end comes through byte for byte. When the origin fails (its body
 * errors, ends mid-frame, sends a frame past `maxFrameBytes` or falls silent for `idleTimeoutMs`)
 * the incomplete frame is dropped and the client gets an `event: error` frame and a clean end,
 * so the failure is visible after a 200 — unless the origin already sent an error event itself.
 * While the origin is silent, a ping goes out every `pingAfterMs`; it always falls between frames.
 *
 * The origin is read only while the client reads (one chunk ahead), so a slow client holds the
 * origin back rather than filling memory, and silence is timed only while waiting on the origin.
 */
export function guardEventStream(upstream: ReadableStream<Uint8Array>, options: EventStreamGuardOptions): ReadableStream<Uint8Array> {
	const reader = upstream.getReader();
	const scanner = new FrameScanner();
	const decoder = new TextDecoder();
	let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
	let held: Uint8Array[] = [];
	let heldBytes = 0;
	let bytesOut = 0;
	let pings = 0;
	let originSentError = false;
	let originErrorType: string | undefined;
	let ended = false;
	let pingTimer: ReturnType<typeof setTimeout> | undefined;
	let idleTimer: ReturnType<typeof setTimeout> | undefined;
	let clientTimer: ReturnType<typeof setTimeout> | undefined;
	// Since when an event (not a ping) has waited for the client; undefined while the queue holds
	// none. The queue is seen empty only when the client took all of it: taking a ping proves
	// nothing (a socket that never drains still takes a ping now and then), so pings never start
	// or reset this clock.
	let owedSince: number | undefined;

	const send = (bytes: Uint8Array, ping = false) => {
		if ((controller?.desiredSize ?? 0) > 0) owedSince = ping ? undefined : Date.now();
		else if (!ping) owedSince ??= Date.now();
		controller?.enqueue(bytes);
		bytesOut += bytes.byteLength;
	};
	const stopTimers = () => {
		if (pingTimer !== undefined) clearTimeout(pingTimer);
		if (idleTimer !== undefined) clearTimeout(idleTimer);
		pingTimer = idleTimer = undefined;
	};
	const end = (kind: StreamOutcome["kind"], failure?: StreamFailure) => {
		ended = true;
		stopTimers();
		if (clientTimer !== undefined) clearTimeout(clientTimer);
		held = [];
		heldBytes = 0;
		const outcome: StreamOutcome = { kind, bytesOut, pings };
		if (failure) outcome.failure = failure;
		if (originErrorType !== undefined) outcome.originErrorType = originErrorType;
		options.onEnd?.(outcome);
	};
	const fail = (failure: StreamFailure) => {
		if (ended) return;
		if (!originSentError) send(errorEvent(options, failure));
		controller?.close();
		reader.cancel(new Error(`event stream stopped: ${failure.kind}`)).catch(() => undefined);
		end("failed", failure);
	};
	// One timer for the life of the stream, at most one bound apart: nothing is timed per event.
	const watchClient = () => {
		if (ended) return;
		const bound = options.clientIdleTimeoutMs ?? 0;
		if ((controller?.desiredSize ?? 0) > 0) owedSince = undefined;
		const owed = owedSince === undefined ? 0 : Date.now() - owedSince;
		if (owed < bound) {
			clientTimer = setTimeout(watchClient, bound - owed);
			return;
		}
		// Nothing more is sent: the client is not reading, and an error event would only join the queue.
		controller?.error(new Error("the client took nothing of the stream"));
		reader.cancel(new Error("event stream stopped: client not reading")).catch(() => undefined);
		end("client-not-reading");
	};
	const ping = () => {
		// A client with a chunk still unread has no use for another; skipping keeps the queue bounded.
		if ((controller?.desiredSize ?? 0) > 0) {
			send(PING, true);
			pings++;
		}
		pingTimer = setTimeout(ping, options.pingAfterMs);
	};
	const watchSilence = () => {
		if (options.pingAfterMs > 0) pingTimer = setTimeout(ping, options.pingAfterMs);
		if (options.idleTimeoutMs > 0) {
			idleTimer = setTimeout(() => fail({ kind: "idle-timeout", idleMs: options.idleTimeoutMs }), options.idleTimeoutMs);
		}
	};
	const hold = (bytes: Uint8Array) => {
		held.push(bytes);
		heldBytes += bytes.byteLength;
		if (heldBytes > options.maxFrameBytes) fail({ kind: "frame-too-large", limit: options.maxFrameBytes });
	};
	/** Takes one chunk from the origin; true when it gave the client something (or ended the stream). */
	const accept = (chunk: Uint8Array): boolean => {
		const frameEnd = scanner.scan(chunk);
		if (frameEnd === -1) {
			hold(chunk);
			return ended;
		}
		let frames = frameEnd === chunk.byteLength ? chunk : chunk.subarray(0, frameEnd);
		if (heldBytes > 0) {
			frames = join(held, heldBytes, frames);
			held = [];
			heldBytes = 0;
		}
		if (!originSentError) {
			const error = findErrorEvent(decoder.decode(frames));
			if (error) {
				originSentError = true;
				originErrorType = error.type;
			}
		}
		send(frames);
		if (frameEnd < chunk.byteLength) hold(chunk.subarray(frameEnd));
		return true;
	};

	return new ReadableStream<Uint8Array>({
		start(streamController) {
			controller = streamController;
			if ((options.clientIdleTimeoutMs ?? 0) > 0) clientTimer = setTimeout(watchClient, options.clientIdleTimeoutMs);
		},
		async pull() {
			while (!ended) {
				watchSilence();
				let result: ReadableStreamReadResult<Uint8Array>;
				try {
					result = await reader.read();
				} catch (cause) {
					fail({ kind: "origin-failed", cause });
					return;
				} finally {
					stopTimers();
				}
				// A cancel or a timeout ended the stream while the read was waiting.
				if (ended) return;
				if (result.done) {
					if (heldBytes > 0) return fail({ kind: "truncated", heldBytes });
					controller?.close();
					return end("complete");
				}
				if (result.value.byteLength > 0 && accept(result.value)) return;
			}
		},
		cancel(reason) {
			if (ended) return;
			reader.cancel(reason).catch(() => undefined);
			options.onCancel?.(reason);
			end("cancelled");
		},
	});
}

function errorEvent(options: EventStreamGuardOptions, failure: StreamFailure): Uint8Array {
	const { type, message } = options.errorFor(failure);
	const body = JSON.stringify({ type: "error", error: { type, message }, request_id: options.requestId });
	return new TextEncoder().encode(`event: error\ndata: ${body}\n\n`);
}

function join(parts: Uint8Array[], size: number, last: Uint8Array): Uint8Array {
	const joined = new Uint8Array(size + last.byteLength);
	let at = 0;
	for (const part of parts) {
		joined.set(part, at);
		at += part.byteLength;
	}
	joined.set(last, at);
	return joined;
}
