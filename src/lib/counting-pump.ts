import { TIMED_OUT, within } from "./within";

/** Why a counted body was stopped. */
export type CountFailure =
	| { kind: "over-cap"; bytes: number; cap: number }
	| { kind: "longer-than-declared"; bytes: number; declared: number }
	| { kind: "shorter-than-declared"; bytes: number; declared: number }
	| { kind: "source-failed"; bytes: number; reason: string }
	| { kind: "refused"; bytes: number; message: string }
	| { kind: "idle"; bytes: number; idleMs: number }
	| { kind: "too-slow"; bytes: number; bytesPerSecond: number }
	| { kind: "over-budget"; bytes: number; budget: number };

/** What the pump enforces besides the cap. */
export interface PumpBounds {
	/** The most bytes that may pass. */
	readonly cap: number;
	/** The declared `Content-Length`, if any: the body must be exactly this long. */
	readonly declared: number | undefined;
	/** The longest the source may send nothing, in ms. */
	readonly idleMs: number;
	/** The request's usage claim, grown as the body arrives; a growth it cannot make refuses the body (`over-budget`). */
	readonly claim?: PumpClaim;
	/** Reads the body as it passes and may refuse it. */
	readonly inspector?: BodyInspector;
	/** The slowest the body may arrive after a grace (the idle bound still applies within it). */
	readonly minRate?: MinRate;
	/** The largest slice read at once (default 4 MiB); smaller for a body decoded as it is read, whose memory is the point. */
	readonly sliceMax?: number;
}

/** A minimum upload rate: after `graceMs`, the body must have arrived at `bytesPerSecond` on average since it started. */
export interface MinRate {
	readonly bytesPerSecond: number;
	readonly graceMs: number;
}

/** A slow body's reads ask for no more than this much of its own pace, so a read completes before the rate is judged. */
const RATE_WINDOW_MS = 500;

/**
 * Reads a body as it passes, for a check that needs its content (the long-request rule). Each
 * returns a reason to refuse the body, or undefined; a slice is inspected before it is forwarded,
 * so a refused slice never reaches the origin. It must not keep the chunk: its buffer is reused.
 */
export interface BodyInspector {
	push(chunk: Uint8Array): string | undefined;
	end(): string | undefined;
}

/**
 * A usage claim as the pump sees it: it covers so many body bytes, grows before a slice past them
 * is forwarded, may read each slice, and may have a last word at the body's end, before the last
 * slice is handed on (so an origin never holds a whole body its claim could not take).
 */
export interface PumpClaim {
	covered(): number;
	grow(bytes: number): Promise<boolean>;
	/** Told the bytes read after each slice: may claim the next growth in the background, so `grow` seldom waits. */
	ahead?(bytes: number): void;
	inspect?(chunk: Uint8Array): void;
	finish?(bytes: number): Promise<boolean>;
}

/** What {@link countingPump} gives the caller. */
export interface CountingPump {
	/** The counted body, for `fetch()`; with a declared length it carries that `Content-Length`. */
	readonly readable: ReadableStream<Uint8Array>;
	/** Settles when the pump stops (the end, a failure or a broken source); the source is free then. */
	readonly done: Promise<void>;
	/** Bytes read from the source so far. */
	bytes(): number;
	/** Whether the whole body has been read and handed on (so the origin has it all once written). */
	complete(): boolean;
}

/**
 * The pump reads the source in slices of at least READ_MIN bytes (or to the end) and at most
 * READ_MAX; near the cap a slice shrinks to what is left plus one byte, so the pump never reads
 * more than one byte past the cap.
 */
const READ_MIN = 1024 * 1024;
const READ_MAX = 4 * 1024 * 1024;
/** The first slice of a body of unknown length: most bodies are small, and a slice is zeroed memory. */
const FIRST_SLICE = 64 * 1024;

/**
 * Streams `source` into workerd's native `TransformStream` (`FixedLengthStream` when a length was
 * declared, so the origin receives the same `Content-Length`; `IdentityTransformStream`
 * otherwise), counting bytes as they pass, and stops the moment the count passes `cap`, the
 * usage claim cannot grow to cover it, differs from `declared`, or the source sends nothing for `idleMs`. The slice that passes a bound is never forwarded, so the origin never receives
 * more than `cap` bytes, and at most one byte is read past the cap (from a byte stream).
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
export function countingPump(source: ReadableStream<Uint8Array>, bounds: PumpBounds, onFailure: (failure: CountFailure) => void): CountingPump {
	const { cap, declared, idleMs, claim, inspector, minRate } = bounds;
	const sliceMax = bounds.sliceMax ?? READ_MAX;
	const sink = declared === undefined ? new IdentityTransformStream() : new FixedLengthStream(declared);
	const writer = sink.writable.getWriter();
	let bytes = 0;
	let complete = false;
	const fail = (failure: CountFailure) => {
		onFailure(failure);
		// Not awaited: with a slice still being written to an aborted upload, abort() would wait for
		// a write that never completes, and the pump must let go of the client's body at once.
		writer.abort(new Error(`request body stopped: ${failure.kind} after ${failure.bytes} bytes`)).catch(() => undefined);
	};
	const pump = async () => {
		const limit = Math.min(cap, declared ?? cap);
		// With a last word to come, each slice waits for the next read: the last is handed on only after it.
		const holdLast = claim?.finish !== undefined;
		let held: Uint8Array | undefined;
		const next = slices(source, sliceMax, () => Math.min(sliceMax, limit - bytes + 1));
		const started = Date.now();
		// One slice is written while the next is read: the network and the origin work at once.
		let writing: { done: Promise<void>; chunk: Uint8Array } | undefined;
		const settleWrite = async () => {
			if (writing === undefined) return;
			await writing.done;
			next.recycle(writing.chunk);
			writing = undefined;
		};
		try {
			for (;;) {
				let slice: ReadableStreamReadResult<Uint8Array> | typeof TIMED_OUT;
				const pace = paced(minRate, bytes, Date.now() - started, Math.min(READ_MIN, sliceMax, limit - bytes + 1));
				try {
					slice = await within(next.read(pace.atLeast), Math.min(idleMs, pace.waitMs));
				} catch (error) {
					// The client broke off mid-upload: the origin must see a failed upload, not a short one.
					return fail({ kind: "source-failed", bytes, reason: String(error) });
				}
				if (slice === TIMED_OUT) return fail(pace.waitMs < idleMs && minRate ? { kind: "too-slow", bytes, bytesPerSecond: minRate.bytesPerSecond } : { kind: "idle", bytes, idleMs });
				const { done, value } = slice;
				if (done) break;
				bytes += value.byteLength;
				if (bytes > cap) return fail({ kind: "over-cap", bytes, cap });
				if (declared !== undefined && bytes > declared) return fail({ kind: "longer-than-declared", bytes, declared });
				if (claim !== undefined && bytes > claim.covered() && !(await claim.grow(bytes))) return fail({ kind: "over-budget", bytes, budget: claim.covered() });
				const refusal = inspector?.push(value);
				if (refusal !== undefined) return fail({ kind: "refused", bytes, message: refusal });
				claim?.inspect?.(value);
				claim?.ahead?.(bytes);
				const ready = holdLast ? held : value;
				if (holdLast) held = value;
				if (ready === undefined) continue;
				await settleWrite();
				writing = { done: writer.write(ready), chunk: ready };
			}
			if (declared !== undefined && bytes < declared) return fail({ kind: "shorter-than-declared", bytes, declared });
			const refusal = inspector?.end();
			if (refusal !== undefined) return fail({ kind: "refused", bytes, message: refusal });
			if (claim?.finish !== undefined && !(await claim.finish(bytes))) return fail({ kind: "over-budget", bytes, budget: claim.covered() });
			if (held !== undefined) {
				await settleWrite();
				writing = { done: writer.write(held), chunk: held };
			}
			complete = true;
			await settleWrite();
			await writer.close();
		} catch (error) {
			// The origin stopped reading (it may have answered already): nothing more to send it.
			await writer.abort(error).catch(() => undefined);
		} finally {
			writing?.done.catch(() => undefined);
			next.release();
		}
	};
	return { readable: sink.readable, done: pump(), bytes: () => bytes, complete: () => complete };
}

/**
 * Reads a stream in large slices: BYOB `readAtLeast` where the stream supports it (a body from the
 * network does), into recycled buffers so a long upload does not leave a trail of garbage.
 */
function slices(
	source: ReadableStream<Uint8Array>,
	max: number,
	room: () => number,
): { read(atLeast: number): Promise<ReadableStreamReadResult<Uint8Array>>; release(): void; recycle(chunk: Uint8Array): void } {
	let byob: ReadableStreamBYOBReader | undefined;
	try {
		byob = source.getReader({ mode: "byob" });
	} catch {
		byob = undefined;
	}
	if (byob) {
		const reader = byob;
		// Slices whose write has completed: the runtime has taken their bytes, so they can be reused.
		const spare: ArrayBuffer[] = [];
		// Sized to what can still come: a small body never costs a 4 MiB buffer; a body that fills
		// its first slice moves on to full-size, recycled ones.
		let first = true;
		return {
			read: (atLeast: number) => {
				let size = Math.max(1, room());
				if (first) size = Math.min(size, FIRST_SLICE);
				const buffer = size < max ? new ArrayBuffer(size) : (spare.pop() ?? new ArrayBuffer(max));
				const view = new Uint8Array(buffer, 0, size);
				const reading = first ? reader.read(view) : reader.readAtLeast(Math.max(1, Math.min(READ_MIN, max, size, atLeast)), view);
				first = false;
				return reading;
			},
			recycle: (chunk: Uint8Array) => {
				if (chunk.buffer.byteLength === max && spare.length < 2) spare.push(chunk.buffer as ArrayBuffer);
			},
			release: () => reader.releaseLock(),
		};
	}
	const reader = source.getReader();
	return { read: () => reader.read(), release: () => reader.releaseLock(), recycle: () => undefined };
}

/**
 * How much the next read waits for, and how long it may take: with a minimum rate, a read asks for
 * at most what the body's own pace brings in {@link RATE_WINDOW_MS} (a slow body is judged on what
 * it sent, not held in one large read), and must complete by the time the body, that read
 * included, would be under the rate.
 */
function paced(rate: MinRate | undefined, bytes: number, elapsedMs: number, most: number): { atLeast: number; waitMs: number } {
	if (rate === undefined || rate.bytesPerSecond <= 0) return { atLeast: most, waitMs: Number.POSITIVE_INFINITY };
	// Over at least a second: a first slice that arrived at once says little about the pace.
	const pace = (bytes / Math.max(1000, elapsedMs)) * RATE_WINDOW_MS;
	const atLeast = Math.max(1, Math.min(most, Math.floor(pace)));
	const dueMs = rate.graceMs + ((bytes + atLeast) / rate.bytesPerSecond) * 1000;
	return { atLeast, waitMs: Math.max(0, dueMs - elapsedMs) };
}
