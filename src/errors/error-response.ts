import { type ErrorType, shouldRetry } from "./error-types";

/** The SPEC's error envelope, exactly. */
export interface ErrorEnvelope {
	type: "error";
	error: { type: ErrorType | string; message: string };
	request_id: string;
}

/** Everything {@link errorResponse} needs to build one error answer. */
export interface ErrorResponseInit {
	status: number;
	type: ErrorType | string;
	message: string;
	requestId: string;
	headers?: HeadersInit;
	/** Keeps an origin's own `x-should-retry` instead of the guard's rule. */
	shouldRetry?: boolean;
	/**
	 * Sends the whole answer at once but keeps the response open until this settles (the lingering
	 * drain of an unwanted upload): workerd ends the connection when the response ends, and an
	 * HTTP/1.1 client still sending then sees a reset instead of the answer.
	 */
	holdOpenUntil?: Promise<unknown>;
}

/** The envelope object; also used for SSE `error` events, which carry the same JSON. */
export function errorEnvelope(type: ErrorType | string, message: string, requestId: string): ErrorEnvelope {
	return { type: "error", error: { type, message }, request_id: requestId };
}

/**
 * The one helper that builds every error response the guard sends: the envelope as JSON, its
 * `request-id` header equal to the body's `request_id`, and `x-should-retry`. An answer whose
 * headers already say `x-should-retry: false` keeps it, and a `429` or `529` then gets no retry
 * hints (a spent budget: no retry can succeed before its period turns).
 */
export function errorResponse(init: ErrorResponseInit): Response {
	const headers = new Headers(init.headers);
	const noRetry = init.shouldRetry === undefined && headers.get("x-should-retry") === "false";
	if ((init.status === 429 || init.status === 529) && !noRetry) withRetryHints(headers);
	headers.set("content-type", "application/json");
	headers.set("request-id", init.requestId);
	headers.set("x-should-retry", String(init.shouldRetry ?? (noRetry ? false : shouldRetry(init.status))));
	const bytes = new TextEncoder().encode(JSON.stringify(errorEnvelope(init.type, init.message, init.requestId)));
	// Stated, so the log line can count the bytes sent (the runtime would send the same length).
	headers.set("content-length", String(bytes.byteLength));
	if (init.holdOpenUntil === undefined) return new Response(bytes, { status: init.status, headers });
	// A fixed length: the client has the complete answer before the response ends.
	const { readable, writable } = new FixedLengthStream(bytes.byteLength);
	const writer = writable.getWriter();
	writer.write(bytes).catch(() => undefined);
	init.holdOpenUntil.finally(() => writer.close().catch(() => undefined));
	return new Response(readable, { status: init.status, headers });
}

/** When no hint says otherwise, a `429` or `529` asks for a retry after this long. */
export const DEFAULT_RETRY_AFTER_MS = 1000;

/**
 * One retry-hint policy for every `429` and `529`, the guard's own and those it relays: both
 * `retry-after` (whole seconds, RFC 9110 §10.2.3; an HTTP date is turned into seconds) and
 * `retry-after-ms`, derived from whichever the answer had (an origin's own values kept), so every
 * client backs off by the same amount rather than by its own guess.
 */
export function withRetryHints(headers: Headers, now: number = Date.now()): Headers {
	const seconds = headers.get("retry-after")?.trim();
	const millis = Number(headers.get("retry-after-ms")?.trim() ?? Number.NaN);
	let ms = Number.isFinite(millis) && millis >= 0 ? millis : undefined;
	if (ms === undefined && seconds !== undefined) {
		const delay = /^[0-9]+$/.test(seconds) ? Number(seconds) * 1000 : Date.parse(seconds) - now;
		if (Number.isFinite(delay)) ms = Math.max(0, delay);
	}
	ms ??= DEFAULT_RETRY_AFTER_MS;
	if (seconds === undefined || !/^[0-9]+$/.test(seconds)) headers.set("retry-after", String(Math.ceil(ms / 1000)));
	if (!headers.has("retry-after-ms") || !Number.isFinite(millis)) headers.set("retry-after-ms", String(Math.ceil(ms)));
	return headers;
}
