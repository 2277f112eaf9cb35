import type { Route } from "../config/route-table";
import type { RequestState } from "../lib/request-state";
import { guardEventStream, type StreamFailure } from "../sse/event-stream-guard";

/** An origin's incomplete event is held back at most this far; a longer one is malformed framing. */
export const MAX_FRAME_BYTES = 1024 * 1024;

/** What the stream tells its request about. */
export interface StreamHooks {
	/** Cancels the origin's request (the client went away, or the stream failed). */
	abortUpstream(): void;
	/** Whether the origin is known to be overloaded (its breaker is not closed) when the stream fails. */
	overloaded(): boolean;
	/** Called once, however the stream ends, with the bytes the client was sent. */
	ended(bytesOut: number): void;
}

/**
 * The client's side of an origin's event stream: whole events pass through as they arrive, a
 * keep-alive ping goes out after the route's `ping_interval_seconds` of silence, and a stream the
 * origin breaks (connection lost, malformed framing, `stream_idle_timeout_seconds` of silence)
 * ends with an `error` event carrying the request ID rather than a silent close. The client going
 * away, or taking nothing for `client_idle_timeout_seconds` (pings aside), cancels the origin's
 * request through `abortUpstream`.
 */
export function honestEventStream(
	upstream: ReadableStream<Uint8Array>,
	route: Route,
	state: RequestState,
	hooks: StreamHooks,
): ReadableStream<Uint8Array> {
	const { abortUpstream, overloaded, ended } = hooks;
	return guardEventStream(upstream, {
		requestId: state.requestId,
		pingAfterMs: route.pingIntervalMs,
		idleTimeoutMs: route.streamIdleTimeoutMs,
		clientIdleTimeoutMs: route.clientIdleTimeoutMs,
		maxFrameBytes: MAX_FRAME_BYTES,
		errorFor: (failure) => ({ type: overloaded() ? "overloaded_error" : "api_error", message: messageFor(failure, route) }),
		onCancel: abortUpstream,
		onEnd: (outcome) => {
			state.decisions.stream = {
				outcome: outcome.kind,
				failure: outcome.failure?.kind ?? null,
				pings: outcome.pings,
				origin_error: outcome.originErrorType ?? null,
			};
			if (outcome.kind === "client-not-reading") {
				state.decisions.response_body = { outcome: "client-not-reading", idle_seconds: route.clientIdleTimeoutMs / 1000, bytes_sent: outcome.bytesOut };
			}
			if (outcome.kind === "failed" || outcome.kind === "client-not-reading") abortUpstream();
			ended(outcome.bytesOut);
		},
	});
}

function messageFor(failure: StreamFailure, route: Route): string {
	switch (failure.kind) {
		case "origin-failed":
			return "The upstream service broke off the stream. Please retry.";
		case "truncated":
			return "The upstream service ended the stream in the middle of an event. Please retry.";
		case "frame-too-large":
			return `The upstream service sent an event longer than ${failure.limit} bytes; the stream was ended. Please retry.`;
		case "idle-timeout":
			return `The upstream service sent nothing for ${route.streamIdleTimeoutMs / 1000} seconds; the stream was ended. Please retry.`;
	}
}
