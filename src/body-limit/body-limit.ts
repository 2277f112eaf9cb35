import type { ContentEncoding, Route } from "../config/route-table";
import { GuardError } from "../errors/guard-error";
import { declaredLength } from "../lib/content-length";
import { type BodyInspector, type CountFailure, countingPump, type MinRate, type PumpClaim } from "../lib/counting-pump";
import type { RequestState } from "../lib/request-state";
import { boundedDecoder } from "./bounded-decoder";
import { lingerAfter } from "./linger";

/**
 * How a request's body will reach the origin, decided from the request line and headers alone,
 * before the origin is contacted:
 * - `none`: no body (or an empty one);
 * - `untouched`: the runtime frames it by a trusted `Content-Length` within the cap and nothing
 *   needs to look inside, so `request.body` goes to the origin as it is;
 * - `counted`: it streams through the counting pump (no length, an untrusted length, a body to
 *   inspect or to decode).
 */
export interface BodyPlan {
	readonly kind: "none" | "untouched" | "counted";
	/** The declared `Content-Length` of the body as sent (before any decoding). */
	readonly declared: number | undefined;
	/** The cap on the bytes that reach the origin (decoded bytes, for an encoded body). */
	readonly cap: number;
	/** The `Content-Encoding` the guard decodes before counting, if any. */
	readonly decode: ContentEncoding | undefined;
}

/** What {@link planBody} needs to know beyond the request and its route. */
export interface PlanOptions {
	/** Whether a valid `Content-Length` is trusted (`TRUST_DECLARED_LENGTH`). */
	readonly trustDeclaredLength: boolean;
	/** Whether something must read the body as it passes (the 10-minute rule). */
	readonly inspect: boolean;
}

const MIB = 1024 * 1024;
/** An untouched body this small is always watched: the pipe costs it nothing measurable, and at the response timeout it tells a slow client from a silent origin. */
const WATCHED_ALWAYS = 1024 * 1024;
/** A decoded body is read in small slices: a bomb's slices are all it costs in memory. */
const DECODED_SLICE = 256 * 1024;
const BODYLESS = new Set(["GET", "HEAD"]);

/** The most bytes a request's body may have: the route's cap, and none at all for GET and HEAD. */
export function capOf(route: Route, method: string): number {
	return BODYLESS.has(method) ? 0 : route.maxBodyBytes;
}

/**
 * Decides a body's plan, and refuses what needs no byte to refuse:
 * - a malformed `Content-Length`: `400`;
 * - any body (a `Content-Length` above 0, or a body with none) where the cap is 0 (every GET and
 *   HEAD, and routes such as DELETE that take none): `413`, so an origin never executes a
 *   request whose body the guard refused;
 * - a declared length over the cap: `413`;
 * - a `Content-Encoding` other than `identity` the route does not decode: `415`.
 */
export function planBody(request: Request, route: Route, state: RequestState, options: PlanOptions): BodyPlan {
	const cap = capOf(route, request.method);
	const declared = declaredLength(request.headers);
	if (declared === null) {
		state.decisions.cap = { cap, declared: request.headers.get("content-length"), outcome: "bad-content-length" };
		throw new GuardError(400, "content-length: must be a single whole number of bytes.");
	}
	if (request.body === null || declared === 0) return { kind: "none", declared, cap, decode: undefined };
	if (declared !== undefined && declared > cap) {
		state.decisions.cap = { cap, declared, outcome: "declared-over-cap", bytes_read: 0 };
		throw tooLarge(cap, declared, undefined);
	}
	if (cap === 0) {
		state.decisions.cap = { cap, declared: declared ?? null, outcome: "body-not-allowed", bytes_read: 0 };
		throw new GuardError(413, `The request body is over this endpoint's limit of 0 bytes: ${request.method} ${route.path} takes none, and the request was refused before it reached the service.`);
	}
	const decode = encodingOf(request, route, state);
	const trusted = options.trustDeclaredLength && declared !== undefined && !options.inspect && decode === undefined;
	return { kind: trusted ? "untouched" : "counted", declared, cap, decode };
}

function encodingOf(request: Request, route: Route, state: RequestState): ContentEncoding | undefined {
	const raw = request.headers.get("content-encoding");
	if (raw === null) return undefined;
	const codings = raw
		.split(",")
		.map((coding) => coding.trim().toLowerCase())
		.filter((coding) => coding !== "" && coding !== "identity");
	if (codings.length === 0) return undefined;
	const [only] = codings;
	const allowed = route.contentEncodings.find((coding) => coding === only);
	if (codings.length === 1 && allowed !== undefined) return allowed;
	state.decisions.validation = { outcome: "unsupported-content-encoding", content_encoding: raw.slice(0, 100) };
	const accepted = route.contentEncodings.length > 0 ? `; this endpoint accepts ${route.contentEncodings.join(", ")}` : "";
	throw new GuardError(415, `content-encoding: ${JSON.stringify(raw.slice(0, 100))} is not accepted for request bodies${accepted}. Send the body uncompressed.`);
}

/** A request body on its way to the origin. */
export interface LimitedBody {
	/** What to give `fetch()`: the counted or untouched body, or `null` when there is none. */
	readonly body: ReadableStream<Uint8Array> | null;
	/** Aborted the moment the body breaks a bound, before it errors; absent when nothing can break one. */
	readonly signal: AbortSignal | undefined;
	/** Resolves with the error to answer the moment the body breaks a bound; absent when nothing can break one. */
	readonly failed: Promise<GuardError> | undefined;
	/** The failure already seen, if any (for a fetch that rejected because the body errored). */
	failure(): GuardError | undefined;
	/** Body bytes read so far. */
	bytes(): number;
	/** Whether the whole body has been handed on; `undefined` when the runtime sends it untouched. */
	complete(): boolean | undefined;
	/** The origin answered: what it has not taken of the body is no longer due (an untouched body's watchdog stops). */
	originAnswered(): void;
}

/** What {@link openBody} enforces besides the plan. */
export interface OpenOptions {
	/** The longest the body may send nothing, in ms. */
	readonly idleMs: number;
	/** The slowest the body may arrive, untouched bodies included (`408` below it). */
	readonly minRate?: MinRate;
	/** The route's response timeout, in ms: an untouched body whose rate deadline falls later is not watched. */
	readonly responseTimeoutMs?: number;
	/** Reads the body as it passes and may refuse it (`400`). */
	readonly inspector?: BodyInspector;
	/** The request's usage claim, grown as the body arrives, and the error to answer when it cannot grow. */
	readonly claim?: PumpClaim & { refusal(holdOpenUntil?: Promise<unknown>): GuardError };
}

/**
 * Starts the body along its plan. A counted body streams through the counting pump into a native
 * stream: the moment it passes its cap or budget, differs from its `Content-Length`, sends nothing
 * for `idleMs`, or the inspector refuses it, the upload to the origin is aborted (the origin sees
 * a failed upload, never a partial body as if whole) and `failed` resolves with the error to
 * answer. A declared length is kept: the origin receives the same `Content-Length`.
 *
 * A refusal after the counting started lingers (`lingerAfter`): the answer is sent whole at once,
 * then the rest of the upload is discarded, bounded, before the response ends, so an HTTP/1.1
 * client receives the answer rather than a connection reset.
 */
export function openBody(request: Request, plan: BodyPlan, state: RequestState, options: OpenOptions): LimitedBody {
	const source = request.body;
	if (plan.kind === "none" || source === null) return NO_BODY;
	const abort = new AbortController();
	if (plan.kind === "untouched") return untouched(source, plan, abort, state, options);
	const { cap, decode } = plan;
	const decoder = decode === undefined ? undefined : boundedDecoder(source, decode);
	const readable = decoder?.readable ?? source;
	let failure: GuardError | undefined;
	let reportFailure: (error: GuardError) => void = () => undefined;
	const failed = new Promise<GuardError>((resolve) => {
		reportFailure = resolve;
	});
	const declared = decode === undefined ? plan.declared : undefined;
	const claim = options.claim;
	const bounds = { cap, declared, idleMs: options.idleMs, claim, inspector: options.inspector, minRate: options.minRate, sliceMax: decoder === undefined ? undefined : DECODED_SLICE };
	const counter = countingPump(readable, bounds, (found) => {
		if (found.kind !== "refused") state.decisions.cap = { cap, declared: plan.declared ?? null, outcome: found.kind, bytes_read: found.bytes };
		// A decoded body is not drained: its compressed rest could decode to any size, so the source is cancelled.
		const lingering = decoder === undefined ? lingerAfter(readable, counter.done, state) : decoder.cancel(`request body stopped: ${found.kind}`);
		failure = found.kind === "over-budget" && claim ? claim.refusal(lingering) : toGuardError(found, lingering);
		// The origin must see a failed upload, never an oversized or partial body as if whole.
		abort.abort();
		reportFailure(failure);
	});
	return { body: counter.readable, signal: abort.signal, failed, failure: () => failure, bytes: counter.bytes, complete: counter.complete, originAnswered: () => undefined };
}

/** No body: nothing to count, watch or refuse (one object for every such request). */
const NO_BODY: LimitedBody = Object.freeze({
	body: null,
	signal: undefined,
	failed: undefined,
	failure: () => undefined,
	bytes: () => 0,
	complete: () => true,
	originAnswered: () => undefined,
});

/**
 * An untouched body of stated length still travels natively, through a `FixedLengthStream` (no
 * byte passes through JavaScript), so that it can be watched: it must be whole by the grace plus
 * its length at the minimum rate, or the upload is aborted and the answer is `408`. A large one
 * due only after the response timeout travels as it is: the response timeout bounds it first. The pipe
 * settles when the origin has taken the last byte, which also tells a slow client from a silent
 * origin at the response timeout.
 */
function untouched(source: ReadableStream<Uint8Array>, plan: BodyPlan, abort: AbortController, state: RequestState, options: OpenOptions): LimitedBody {
	const length = plan.declared ?? 0;
	const rate = options.minRate;
	const dueMs = rate === undefined || rate.bytesPerSecond <= 0 ? Number.POSITIVE_INFINITY : rate.graceMs + (length / rate.bytesPerSecond) * 1000;
	// Measured, the pipe costs a large body up to a third of its speed (the interposed bench); a large
	// body due after the response timeout gains nothing from it, so it goes as it is.
	const watched = dueMs < (options.responseTimeoutMs ?? Number.POSITIVE_INFINITY) || (dueMs < Number.POSITIVE_INFINITY && length <= WATCHED_ALWAYS);
	// workerd cannot pipe a tee's branch into another native stream ("Inter-TransformStream pipeTo");
	// a body teed before admission was read whole there, or it is counted.
	if (rate === undefined || !watched || state.bodyTeed === true) {
		return { body: source, signal: undefined, failed: undefined, failure: () => undefined, bytes: () => length, complete: () => undefined, originAnswered: () => undefined };
	}
	const pipe = new FixedLengthStream(length);
	let complete = false;
	let failure: GuardError | undefined;
	let stopWatch: () => void = () => undefined;
	const failed = new Promise<GuardError>((resolve) => {
		const timer = setTimeout(
			() => {
				failure = tooSlow(rate.bytesPerSecond);
				state.decisions.cap = { cap: plan.cap, declared: length, outcome: "too-slow", bytes_read: null };
				abort.abort();
				resolve(failure);
			},
			dueMs,
		);
		stopWatch = () => clearTimeout(timer);
	});
	source
		.pipeTo(pipe.writable, { signal: abort.signal })
		.then(() => {
			complete = true;
		})
		.catch(() => undefined)
		.finally(() => stopWatch());
	return { body: pipe.readable, signal: abort.signal, failed, failure: () => failure, bytes: () => length, complete: () => complete, originAnswered: () => stopWatch() };
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
		case "idle":
			return new GuardError(408, `The request body sent nothing for ${failure.idleMs / 1000} seconds; the upload was cancelled.`);
		case "too-slow":
			return tooSlow(failure.bytesPerSecond);
		case "over-budget":
			return new GuardError(429, "The request body is over your organization's input token allowance.", { type: "rate_limit_error" });
		case "source-failed":
			return new GuardError(400, `The request body could not be read to its end (after ${failure.bytes} bytes); the upload was cancelled.`);
	}
}

function tooSlow(bytesPerSecond: number): GuardError {
	return new GuardError(408, `The request body arrived slower than ${bytesPerSecond} bytes a second; the upload was cancelled.`);
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
