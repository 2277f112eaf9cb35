import { APIError } from "@anthropic-ai/sdk/core/error";
import { Stream } from "@anthropic-ai/sdk/core/streaming";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type EventStreamGuardOptions, type StreamFailure, type StreamOutcome, guardEventStream } from "../src/sse/event-stream-guard";
import { FrameScanner, findErrorEvent } from "../src/sse/sse-frames";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const PING = 'event: ping\ndata: {"type": "ping"}\n\n';

/** Every line ending and frame ending the spec allows, mixed, ending at a frame end. */
const MIXED = "event: a\ndata: 1\n\ndata: 2\r\n\r\ndata: 3\r\r: note\n\ndata: 4\r\n\ndata: 5\n\r\nid: 6\rdata: 6\r\n\r";

function errorFor(failure: StreamFailure): { type: string; message: string } {
	return { type: failure.kind === "idle-timeout" ? "timeout_error" : "api_error", message: `The stream broke off (${failure.kind}).` };
}

function errorEvent(kind: StreamFailure["kind"]): string {
	const { type, message } = errorFor({ kind } as StreamFailure);
	return `event: error\ndata: ${JSON.stringify({ type: "error", error: { type, message }, request_id: "req_test" })}\n\n`;
}

/** An origin body that gives one chunk per read, then closes or errors. */
function upstreamOf(chunks: (string | Uint8Array)[], ending: "close" | Error = "close") {
	let next = 0;
	const cancelled: unknown[] = [];
	const stream = new ReadableStream<Uint8Array>(
		{
			pull(controller) {
				const chunk = chunks[next++];
				if (chunk !== undefined) controller.enqueue(typeof chunk === "string" ? encoder.encode(chunk) : chunk);
				else if (ending === "close") controller.close();
				else controller.error(ending);
			},
			cancel(reason) {
				cancelled.push(reason);
			},
		},
		{ highWaterMark: 0 },
	);
	return { stream, cancelled };
}

/** An origin body the test writes to as it goes; `cancelled` settles when the guard cancels it. */
function liveUpstream() {
	let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
	let markCancelled: (reason: unknown) => void = () => undefined;
	const cancelled = new Promise<unknown>((resolve) => {
		markCancelled = resolve;
	});
	const stream = new ReadableStream<Uint8Array>({
		start(streamController) {
			controller = streamController;
		},
		cancel(reason) {
			markCancelled(reason);
			// An origin that never confirms: the guard must not wait on it.
			return new Promise<void>(() => undefined);
		},
	});
	return {
		stream,
		cancelled,
		push: (text: string) => controller?.enqueue(encoder.encode(text)),
		close: () => controller?.close(),
		error: (reason: unknown) => controller?.error(reason),
	};
}

function guardStream(upstream: ReadableStream<Uint8Array>, options: Partial<EventStreamGuardOptions> = {}) {
	const ends: StreamOutcome[] = [];
	const cancels: unknown[] = [];
	const stream = guardEventStream(upstream, {
		requestId: "req_test",
		pingAfterMs: 0,
		idleTimeoutMs: 0,
		maxFrameBytes: 1024,
		errorFor,
		onEnd: (outcome) => ends.push(outcome),
		onCancel: (reason) => cancels.push(reason),
		...options,
	});
	return { stream, ends, cancels };
}

function guard(upstream: ReadableStream<Uint8Array>, options: Partial<EventStreamGuardOptions> = {}) {
	const guarded = guardStream(upstream, options);
	return { ...guarded, reader: guarded.stream.getReader() };
}

async function readAll(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<string[]> {
	const chunks: string[] = [];
	for (;;) {
		const { done, value } = await reader.read();
		if (done) return chunks;
		chunks.push(decoder.decode(value));
	}
}

async function readText(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<string> {
	const { done, value } = await reader.read();
	expect(done).toBe(false);
	return decoder.decode(value);
}

/** The next chunk that is not a ping, and how many pings came first. */
async function readPastPings(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<{ text: string; pings: number }> {
	for (let pings = 0; ; pings++) {
		const text = await readText(reader);
		if (text !== PING) return { text, pings };
	}
}

/**
 * Whether `text` ends where a frame ends, by a reading independent of the scanner: split into
 * lines the way the spec does (CRLF before CR), it is all whole lines and the last is empty.
 */
function endsAtFrameEnd(text: string): boolean {
	let answer = frameEnds.get(text);
	if (answer === undefined) {
		const lines = text.match(/[^\r\n]*(?:\r\n|\r|\n)/g) ?? [];
		answer = text === "" || (lines.join("") === text && /^(?:\r\n|\r|\n)$/.test(lines.at(-1) ?? ""));
		frameEnds.set(text, answer);
	}
	return answer;
}
const frameEnds = new Map<string, boolean>();

/** Every way to cut `text` into at most two chunks, or at most three with `cuts` 2. */
function* splits(text: string, cuts: 1 | 2 = 2): Generator<string[]> {
	for (let i = 0; i <= text.length; i++) {
		for (let j = cuts === 2 ? i : text.length; j <= text.length; j++) {
			yield [text.slice(0, i), text.slice(i, j), text.slice(j)].filter((part) => part !== "");
		}
	}
}

const bytes = (outcome: string) => encoder.encode(outcome).byteLength;

// Counts live timers, to prove every ending clears the guard's.
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;
const liveTimers = new Set<unknown>();
let timersStarted = 0;
beforeEach(() => {
	timersStarted = 0;
	globalThis.setTimeout = ((callback: () => void, ms?: number) => {
		timersStarted++;
		const id = realSetTimeout(() => {
			liveTimers.delete(id);
			callback();
		}, ms);
		liveTimers.add(id);
		return id;
	}) as typeof setTimeout;
	globalThis.clearTimeout = ((id?: Parameters<typeof clearTimeout>[0]) => {
		liveTimers.delete(id);
		realClearTimeout(id);
	}) as typeof clearTimeout;
});
afterEach(() => {
	globalThis.setTimeout = realSetTimeout;
	globalThis.clearTimeout = realClearTimeout;
	liveTimers.clear();
});

describe("the frame scanner", () => {
	it("finds the same frame ends however the bytes are split", () => {
		const endsAt = [...Array(MIXED.length + 1).keys()].map((offset) => endsAtFrameEnd(MIXED.slice(0, offset)));
		for (const parts of splits(MIXED)) {
			const scanner = new FrameScanner();
			let seen = 0;
			for (const part of parts) {
				let lastEnd = -1;
				for (let end = 1; end <= part.length; end++) if (endsAt[seen + end]) lastEnd = end;
				expect(scanner.scan(encoder.encode(part)), JSON.stringify(parts)).toBe(lastEnd);
				seen += part.length;
			}
		}
	});

	it("takes an LF after a CR that ended a chunk as the rest of one line end, not an empty line", () => {
		const scanner = new FrameScanner();
		expect(scanner.scan(encoder.encode("data: 1\r"))).toBe(-1);
		expect(scanner.scan(encoder.encode("\n"))).toBe(-1);
		expect(scanner.scan(encoder.encode("\r"))).toBe(1);
		expect(scanner.scan(encoder.encode("\ndata: 2"))).toBe(1);
	});

	it("reads an error event's type the way a client does", () => {
		expect(findErrorEvent('event: error\r\ndata: {"type":"error","error":{"type":"overloaded_error"}}\r\n\r\n')).toEqual({ type: "overloaded_error" });
		expect(findErrorEvent("event:error\ndata: not json\n\n")).toEqual({ type: undefined });
		expect(findErrorEvent("event: error\n\n")).toBeUndefined();
		expect(findErrorEvent('event:  error\ndata: {}\n\ndata: {"error":{"type":"x"}}\n\n')).toBeUndefined();
	});
});

describe("the event stream guard", () => {
	it("passes a stream that ends at a frame end through byte for byte, in whole frames, cut anywhere or byte by byte", async () => {
		const sources = [MIXED, ...["\n", "\r\n", "\r"].map((eol) => `event: a${eol}data: 1${eol}${eol}:${eol}${eol}data: 2${eol}data: 3${eol}${eol}`)];
		for (const source of sources) {
			for (const parts of [...splits(source, 1), [...source]]) {
				const { reader, ends } = guard(upstreamOf(parts).stream);
				const chunks = await readAll(reader);
				expect(chunks.join("")).toBe(source);
				let sent = "";
				for (const chunk of chunks) {
					sent += chunk;
					expect(endsAtFrameEnd(sent), JSON.stringify(parts)).toBe(true);
				}
				expect(ends).toEqual([{ kind: "complete", bytesOut: source.length, pings: 0 }]);
			}
		}
	});

	it("passes multi-byte characters through unchanged when a chunk splits one", async () => {
		const source = encoder.encode("data: héllo 😀\n\ndata: ✓\n\n");
		for (let i = 1; i < source.length; i++) {
			const { reader, ends } = guard(upstreamOf([source.subarray(0, i), source.subarray(i)]).stream);
			expect((await readAll(reader)).join("")).toBe(decoder.decode(source));
			expect(ends).toEqual([{ kind: "complete", bytesOut: source.length, pings: 0 }]);
		}
	});

	it("forwards each whole frame while the origin is still sending, holding back only the unfinished one", async () => {
		const origin = liveUpstream();
		const { reader, ends } = guard(origin.stream);
		origin.push("data: 1\n\ndata: 2");
		expect(await readText(reader)).toBe("data: 1\n\n");
		const next = reader.read();
		origin.push("\r");
		origin.push("\n");
		origin.push("\r\n");
		// One chunk holding the whole frame: nothing of it went out before its empty line.
		expect(decoder.decode((await next).value)).toBe("data: 2\r\n\r\n");
		origin.push("data: 3\r\r");
		expect(await readText(reader)).toBe("data: 3\r\r");
		origin.push("\ndata: 4\n\n");
		expect(await readText(reader)).toBe("\ndata: 4\n\n");
		origin.close();
		expect((await reader.read()).done).toBe(true);
		expect(ends).toEqual([{ kind: "complete", bytesOut: 39, pings: 0 }]);
	});

	it("appends an error event after the last whole frame when the origin breaks mid-frame", async () => {
		const lost = new Error("connection lost");
		const { reader, ends } = guard(upstreamOf(["data: 1\n\ndata: 2", " and more"], lost).stream);
		const out = (await readAll(reader)).join("");
		expect(out).toBe(
			'data: 1\n\nevent: error\ndata: {"type":"error","error":{"type":"api_error","message":"The stream broke off (origin-failed)."},"request_id":"req_test"}\n\n',
		);
		expect(ends).toEqual([{ kind: "failed", failure: { kind: "origin-failed", cause: lost }, bytesOut: bytes(out), pings: 0 }]);
	});

	it("ends with an error event in place of the unfinished frame when the origin closes mid-frame, wherever it stops", async () => {
		for (let cut = 0; cut <= MIXED.length; cut++) {
			const sent = MIXED.slice(0, cut);
			const whole = Math.max(...[...Array(cut + 1).keys()].filter((i) => endsAtFrameEnd(sent.slice(0, i))));
			for (const parts of splits(sent, 1)) {
				const { reader, ends } = guard(upstreamOf(parts).stream);
				const out = (await readAll(reader)).join("");
				if (whole === cut) {
					expect(out).toBe(sent);
					expect(ends).toEqual([{ kind: "complete", bytesOut: cut, pings: 0 }]);
				} else {
					expect(out).toBe(sent.slice(0, whole) + errorEvent("truncated"));
					expect(ends).toEqual([{ kind: "failed", failure: { kind: "truncated", heldBytes: cut - whole }, bytesOut: out.length, pings: 0 }]);
				}
			}
		}
	});

	it("fails a frame that grows past maxFrameBytes without ending, and stops reading the origin", async () => {
		const origin = upstreamOf(["data: 1\n\ndata: 1234", "567890", "a", "\n\n"]);
		const { reader, ends } = guard(origin.stream, { maxFrameBytes: 16 });
		const out = (await readAll(reader)).join("");
		expect(out).toBe(`data: 1\n\n${errorEvent("frame-too-large")}`);
		expect(ends).toEqual([{ kind: "failed", failure: { kind: "frame-too-large", limit: 16 }, bytesOut: out.length, pings: 0 }]);
		expect(origin.cancelled).toHaveLength(1);
	});

	it("lets a whole frame larger than maxFrameBytes through when it arrives in one chunk", async () => {
		const frame = `data: ${"x".repeat(100)}\n\n`;
		const { reader, ends } = guard(upstreamOf([frame]).stream, { maxFrameBytes: 16 });
		expect((await readAll(reader)).join("")).toBe(frame);
		expect(ends[0]?.kind).toBe("complete");
	});

	it("fails with an idle timeout when the origin falls silent mid-frame", async () => {
		const origin = liveUpstream();
		const { reader, ends } = guard(origin.stream, { idleTimeoutMs: 40 });
		origin.push("data: 1\n\ndata: 2");
		expect(await readText(reader)).toBe("data: 1\n\n");
		expect(await readText(reader)).toBe(errorEvent("idle-timeout"));
		expect((await reader.read()).done).toBe(true);
		expect(await origin.cancelled).toBeInstanceOf(Error);
		const out = `data: 1\n\n${errorEvent("idle-timeout")}`;
		expect(ends).toEqual([{ kind: "failed", failure: { kind: "idle-timeout", idleMs: 40 }, bytesOut: out.length, pings: 0 }]);
		expect(liveTimers.size).toBe(0);
	});

	it("pings a silent origin's client between frames, again and again, until the origin speaks", async () => {
		const origin = liveUpstream();
		const { reader, ends } = guard(origin.stream, { pingAfterMs: 15 });
		origin.push("event: a\ndata: 1\n\nevent: b\ndata:");
		expect(await readText(reader)).toBe("event: a\ndata: 1\n\n");
		expect(await readText(reader)).toBe(PING);
		expect(await readText(reader)).toBe(PING);
		origin.push(" 2\n\n");
		const { text, pings } = await readPastPings(reader);
		expect(text).toBe("event: b\ndata: 2\n\n");
		origin.close();
		// A slow machine may fit another ping in before the close is read.
		const late = await readAll(reader);
		expect(late.every((chunk) => chunk === PING)).toBe(true);
		const total = 2 + pings + late.length;
		expect(ends).toEqual([{ kind: "complete", bytesOut: 36 + total * PING.length, pings: total }]);
		expect(timersStarted).toBeGreaterThan(0);
		expect(liveTimers.size).toBe(0);
	});

	it("pings and then times out an origin that stays silent, clearing its timers", async () => {
		const origin = liveUpstream();
		const { reader, ends } = guard(origin.stream, { pingAfterMs: 10, idleTimeoutMs: 45 });
		const chunks = await readAll(reader);
		expect(chunks.at(-1)).toBe(errorEvent("idle-timeout"));
		const pings = chunks.slice(0, -1);
		expect(pings.length).toBeGreaterThan(0);
		expect(new Set(pings)).toEqual(new Set([PING]));
		expect(ends).toHaveLength(1);
		expect(ends[0]?.pings).toBe(pings.length);
		expect(liveTimers.size).toBe(0);
	});

	it("adds no error event of its own when the origin has already sent one", async () => {
		const originError = 'event: error\r\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\r\n\r\n';
		const sent = `data: 1\n\n${originError}`;
		const broken = guard(upstreamOf([sent, "data: late"], new Error("connection lost")).stream);
		expect((await readAll(broken.reader)).join("")).toBe(sent);
		expect(broken.ends).toEqual([
			{ kind: "failed", failure: { kind: "origin-failed", cause: new Error("connection lost") }, bytesOut: sent.length, pings: 0, originErrorType: "overloaded_error" },
		]);

		const closed = guard(upstreamOf(["data: 1\n\nevent: err", "or\ndata: {}\n\n"]).stream);
		expect((await readAll(closed.reader)).join("")).toBe("data: 1\n\nevent: error\ndata: {}\n\n");
		expect(closed.ends).toEqual([{ kind: "complete", bytesOut: 32, pings: 0 }]);
	});

	it("does not count an unfinished origin error event as sent", async () => {
		const { reader, ends } = guard(upstreamOf(['data: 1\n\nevent: error\ndata: {"error":{"type":"overloaded_error"}}\n']).stream);
		expect((await readAll(reader)).join("")).toBe(`data: 1\n\n${errorEvent("truncated")}`);
		expect(ends[0]?.originErrorType).toBeUndefined();
	});

	it("cancels the origin at once when the client goes away, without waiting on its pending read", async () => {
		const origin = liveUpstream();
		const { reader, ends, cancels } = guard(origin.stream, { pingAfterMs: 1000, idleTimeoutMs: 2000 });
		origin.push("data: 1\n\ndata: 2");
		expect(await readText(reader)).toBe("data: 1\n\n");
		const pending = reader.read();
		await reader.cancel("client gone");
		expect((await pending).done).toBe(true);
		expect(await origin.cancelled).toBe("client gone");
		expect(cancels).toEqual(["client gone"]);
		expect(ends).toEqual([{ kind: "cancelled", bytesOut: 9, pings: 0 }]);
		expect(liveTimers.size).toBe(0);
	});

	it("calls onEnd once when the client cancels after a failure it has not read yet", async () => {
		let failed: () => void = () => undefined;
		const ended = new Promise<void>((resolve) => {
			failed = resolve;
		});
		const ends: StreamOutcome[] = [];
		// The guard reads a chunk before the client asks: this one fails with nobody reading.
		const { stream, cancels } = guardStream(upstreamOf(["data: 12345"]).stream, {
			maxFrameBytes: 4,
			onEnd: (outcome) => {
				ends.push(outcome);
				failed();
			},
		});
		await ended;
		await stream.cancel("late");
		expect(ends.map((outcome) => outcome.kind)).toEqual(["failed"]);
		expect(cancels).toEqual([]);
	});
});

describe("the official SDK reading a guarded stream", () => {
	const frames = [
		'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":3,"output_tokens":1}}}\n\n',
		'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}\n\n',
	];

	async function iterate(stream: ReadableStream<Uint8Array>): Promise<{ types: string[]; error: unknown }> {
		const types: string[] = [];
		try {
			for await (const event of Stream.fromSSEResponse<{ type: string }>(new Response(stream), new AbortController())) types.push(event.type);
		} catch (error) {
			return { types, error };
		}
		return { types, error: undefined };
	}

	it("raises an APIError carrying the guard's error type when the origin breaks mid-event", async () => {
		const origin = upstreamOf([...frames, 'event: content_block_delta\ndata: {"type":"content_bl'], new Error("connection lost"));
		const { types, error } = await iterate(guardStream(origin.stream, { pingAfterMs: 0 }).stream);
		expect(types).toEqual(["message_start", "content_block_delta"]);
		expect(error).toBeInstanceOf(APIError);
		expect((error as APIError).type).toBe("api_error");
		expect((error as APIError).error).toEqual({
			type: "error",
			error: { type: "api_error", message: "The stream broke off (origin-failed)." },
			request_id: "req_test",
		});
	});

	it("skips the guard's pings and raises the timeout it ends with", async () => {
		const origin = liveUpstream();
		origin.push(frames.join(""));
		const { types, error } = await iterate(guardStream(origin.stream, { pingAfterMs: 10, idleTimeoutMs: 35 }).stream);
		expect(types).toEqual(["message_start", "content_block_delta"]);
		expect((error as APIError).type).toBe("timeout_error");
	});
});
