import type { Route } from "../config/route-table";
import { GuardError } from "../errors/guard-error";
import { declaredLength } from "../lib/content-length";
import { type BodyInspector, type CountFailure, countingPump } from "../lib/counting-pump";
import type { RequestState } from "../pipeline/request-state";
import { lingerAfter } from "./linger";

/** A request body on its way to the origin, counted against the route's cap. */
export interface LimitedBody {
	/** What to give `fetch()`: the counted body, or `null` when there is none. */
	readonly body: ReadableStream<Uint8Array> | null;
	/** Give it to `fetch()` too: aborted the moment the body breaks a bound, before it errors. */
	readonly signal: AbortSignal;
	/** Resolves with the error to answer the moment the body breaks a bound. */
	readonly failed: Promise<GuardError>;
	/** The failure already seen, if any (for a fetch that rejected because the body errored). */
	failure(): GuardError | undefined;
	/** Body bytes read so far. */
	bytes(): number;
}

const MIB = 1024 * 1024;
const NO_BODY: Omit<LimitedBody, "signal"> = { body: null, failed: new Promise(() => undefined), failure: () => undefined, bytes: () => 0 };

/**
 * Admits a request body under its route's cap (`max_body_bytes`).
 *
 * - A `Content-Length` over the cap is answered `413` at once: no byte is read before the answer
 *   and the origin is not contacted.
 * - A malformed `Content-Length` is answered `400`.
 * - Any other body streams through a counting pump into a native `TransformStream`; the moment the
 *   count passes the
 *   cap (or the body turns out longer or shorter than its `Content-Length`), the upload to the
 *   origin is aborted and `failed` resolves with the error to answer. A declared length is kept:
 *   the origin receives the same `Content-Length`, not a chunked body.
 *
 * An `inspector` reads the body as it passes and may refuse it (`400`) the same way, before the
 * refused slice reaches the origin.
 *
 * A refusal after the counting started lingers (`lingerAfter`): the answer is sent whole at once,
 * then the rest of the upload is discarded, bounded, before the response ends, so an HTTP/1.1
 * client receives the answer rather than a connection reset. Refusals before any byte was read
 * linger in the pipeline's error stage, like every other early answer.
 */
export function limitBody(request: Request, route: Route, state: RequestState, inspector?: BodyInspector): LimitedBody {
	const cap = route.maxBodyBytes;
	const source = request.body;
	const declared = checkDeclaredLength(request, route, state);
	const abort = new AbortController();
	if (source === null || declared === 0) return { ...NO_BODY, signal: abort.signal };

	let failure: GuardError | undefined;
	let reportFailure: (error: GuardError) => void = () => undefined;
	const failed = new Promise<GuardError>((resolve) => {
		reportFailure = resolve;
	});
	const counter = countingPump(source, cap, declared, (found) => {
		if (found.kind !== "refused") state.decisions.cap = { cap, declared: declared ?? null, outcome: found.kind, bytes_read: found.bytes };
		failure = toGuardError(found, lingerAfter(source, counter.done, state));
		// The origin must see a failed upload, never an oversized or partial body as if whole.
		abort.abort();
		reportFailure(failure);
	}, inspector);
	return { body: counter.readable, signal: abort.signal, failed, failure: () => failure, bytes: counter.bytes };
}

/**
 * The checks on a declared `Content-Length` alone, which need no byte of the body: `400` when it
 * is malformed, `413` when it is over the route's cap. Returns the declared length, if any.
 */
export function checkDeclaredLength(request: Request, route: Route, state: RequestState): number | undefined {
	const cap = route.maxBodyBytes;
	const declared = declaredLength(request.headers);
	if (declared === null) {
		state.decisions.cap = { cap, declared: request.headers.get("content-length"), outcome: "bad-content-length" };
		throw new GuardError(400, "content-length: must be a single whole number of bytes.");
	}
	if (declared !== undefined && declared > cap) {
		state.decisions.cap = { cap, declared, outcome: "declared-over-cap", bytes_read: 0 };
		throw tooLarge(cap, declared, undefined);
	}
	return declared;
}

function toGuardError(failure: CountFailure, lingering: Promise<void>): GuardError {
	switch (failure.kind) {
		case "over-cap":
			return tooLarge(failure.cap, undefined, lingering);
		case "longer-than-declared":
			return new GuardError(400, `The request body is longer than its content-length of ${failure.declared} bytes.`, {
				holdOpenUntil: lingering,
			});
		case "shorter-than-declared":
			return new GuardError(400, `The request body ended after ${failure.bytes} of the ${failure.declared} bytes its content-length declared.`);
		case "refused":
			return new GuardError(400, failure.message, { holdOpenUntil: lingering });
		case "source-failed":
			return new GuardError(400, `The request body could not be read to its end (after ${failure.bytes} bytes); the upload was cancelled.`);
	}
}

function tooLarge(cap: number, declared: number | undefined, lingering: Promise<void> | undefined): GuardError {
	const size = declared === undefined ? "The request body is" : `The request body (${declared} bytes) is`;
	return new GuardError(413, `${size} over this endpoint's limit of ${cap} bytes (${formatMiB(cap)} MB).`, {
		holdOpenUntil: lingering,
	});
}

function formatMiB(bytes: number): string {
	return (bytes / MIB).toFixed(bytes % MIB === 0 ? 0 : 2);
}
