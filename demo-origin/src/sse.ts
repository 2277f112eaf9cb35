import { sleep } from "./sleep";

/** One server-sent event: its `event:` name and the JSON of its `data:` line. */
export interface SseEvent {
	readonly event: string;
	readonly data: unknown;
}

/** What a stream sends, how fast, and how it ends. */
export interface SsePlan {
	/** The whole stream, as a server that will finish it would send it. */
	readonly events: readonly SseEvent[];
	/** Silence between two events, so that they leave as separate writes, as a real model's do. */
	readonly gapMs: number;
	/** A longer silence before the event at `beforeIndex` (the `slow-stream` fault). */
	readonly pause?: { readonly beforeIndex: number; readonly ms: number };
	/** Sends only this many events, then breaks the connection (the `stream-abort` fault). */
	readonly breakAfter?: number;
}

/**
 * How long a broken stream waits after its last event before erroring: erroring the controller
 * drops chunks still queued, so this gives the runtime time to write the last event out first.
 */
const FLUSH_BEFORE_ERROR_MS = 50;

const encoder = new TextEncoder();

/** The wire form of one event: `event: NAME\ndata: JSON\n\n`. */
export function sseFrame(event: SseEvent): string {
	return `event: ${event.event}\ndata: ${JSON.stringify(event.data)}\n\n`;
}

/**
 * A 200 `text/event-stream` response whose body is produced one event per pull, so it is written
 * progressively and follows the reader's pace. It stops early when `signal` aborts or the reader
 * cancels.
 *
 * With `breakAfter`, the body errors after that many events. An errored body alone is not enough:
 * workerd still ends a chunked response with its terminating chunk, so an HTTP client would see a
 * clean end. The broken stream therefore goes out through a FixedLengthStream that declares the
 * whole stream's length; falling short of it makes workerd close the connection mid-body, which
 * is what a client sees when a real upstream dies. Through a service binding the reader gets the
 * error itself.
 */
export function sseResponse(plan: SsePlan, signal: AbortSignal): Response {
	const stop = new AbortController();
	signal.addEventListener("abort", () => stop.abort(), { once: true });
	const frames = plan.events.map((event) => encoder.encode(sseFrame(event)));
	const sent = plan.breakAfter === undefined ? frames : frames.slice(0, plan.breakAfter);
	let next = 0;
	const body = new ReadableStream<Uint8Array>({
		async pull(controller) {
			if (next >= sent.length) {
				if (plan.breakAfter === undefined) {
					controller.close();
				} else {
					await sleep(FLUSH_BEFORE_ERROR_MS, stop.signal);
					controller.error(new Error("demo: stream aborted"));
				}
				return;
			}
			const wait = plan.pause?.beforeIndex === next ? plan.pause.ms : next === 0 ? 0 : plan.gapMs;
			if (wait > 0 && !(await sleep(wait, stop.signal))) {
				controller.error(new Error("demo: stream stopped because the request was aborted"));
				return;
			}
			const frame = sent[next++];
			if (frame !== undefined) controller.enqueue(frame);
		},
		cancel() {
			stop.abort();
		},
	});
	const headers = { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" };
	if (plan.breakAfter === undefined) return new Response(body, { status: 200, headers });
	const promised = frames.reduce((total, frame) => total + frame.byteLength, 0);
	const { readable, writable } = new FixedLengthStream(promised);
	// The pipe rejects when the body errors; that is the point, and it aborts `writable`.
	body.pipeTo(writable).catch(() => undefined);
	return new Response(readable, { status: 200, headers });
}
