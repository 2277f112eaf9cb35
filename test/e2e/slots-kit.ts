// Helpers for slots.test.ts (issue 20): an origin that records what it received (as
// recording-origin.ts does) and can also answer with endless event streams, very large JSON
// answers and encoded (gzip, deflate, br) answers; clients that never read; uploads that stall or
// drip; and the third organisation's polling for a 200.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { type AddressInfo, connect, type Socket } from "node:net";
import { brotliCompressSync, constants as zlibConstants, createGzip, deflateSync, gzipSync } from "node:zlib";
import type { Usage } from "./accounting-kit";
import { type Answer, fetchAnswer, messageBody } from "./hostile-kit";
import type { LocalServer } from "./local-server";
import { openRaw, type RawExchange, requestHead } from "./raw-http";
import { BEHAVIOUR_HEADER, type OriginRecord, originRecord } from "./recording-origin";
import { Watched } from "./watched";
import { recordExchange } from "./origin-ends";

export { BEHAVIOUR_HEADER };

/** Values of {@link BEHAVIOUR_HEADER} this origin answers besides a normal answer and `hang`. */
export const BEHAVIOUR = {
	/** An event stream that never ends: text deltas for as long as the connection takes them. */
	endlessStream: "endless-sse",
	/** A `200` message of {@link BIG_JSON_BYTES} bytes with its `content-length`, written as the connection takes it. */
	bigJson: "big-json",
	/** A message encoded as {@link ENCODING_HEADER} says, framed as {@link FRAMING_HEADER} says. */
	encodedJson: "encoded-json",
	/** A message's event stream, gzipped, flushed event by event. */
	gzipStream: "gzip-sse",
} as const;

/** `gzip`, `deflate` or `br`: the answer's `content-encoding` (with {@link BEHAVIOUR.encodedJson}). */
export const ENCODING_HEADER = "x-test-encoding";
/** `length` (`content-length`) or `chunked` (with {@link BEHAVIOUR.encodedJson}). */
export const FRAMING_HEADER = "x-test-framing";
/** The text's length in the encoded message, in bytes (with {@link BEHAVIOUR.encodedJson}). */
export const TEXT_BYTES_HEADER = "x-test-text-bytes";

/** How large a {@link BEHAVIOUR.bigJson} answer is: far more than every buffer between origin and client. */
export const BIG_JSON_BYTES = 64 * 1024 * 1024;
/** The output tokens every message answer of this origin reports. */
export const OUTPUT_TOKENS = 7;

/** What the slots origin saw of one request, and what it answered. */
export interface SlotsRecord extends OriginRecord {
	/** The usage the answer reported (for a message whose answer was written whole), else undefined. */
	reported?: Usage;
	/** Bytes of the answer's body written to the connection (before any encoding). */
	bytesWritten: number;
	/** The answer's text, as JSON or the concatenated text deltas (for the encoded answers). */
	text?: string;
}

export interface SlotsOrigin {
	readonly url: string;
	readonly records: readonly SlotsRecord[];
	/** The records whose path and query start with `prefix` (sentinels left out). */
	at(prefix: string): SlotsRecord[];
	/** Resolves once `condition` holds (checked on every change); rejects naming `what` after `timeoutMs`. */
	waitFor(condition: () => boolean, what: string, timeoutMs?: number): Promise<void>;
	stop(): Promise<void>;
}

export async function startSlotsOrigin(): Promise<SlotsOrigin> {
	const records: SlotsRecord[] = [];
	const watched = new Watched();
	const changed = () => watched.changed();
	const server = createServer((req, res) => {
		const entry: SlotsRecord = {
			...originRecord(req),
			bytesWritten: 0,
		};
		records.push(entry);
		changed();
		recordExchange(entry, req, res, changed, () => answer(req, res, entry, changed));
	});
	await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
	const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
	return {
		url,
		records,
		at: (prefix) => records.filter((entry) => !entry.sentinel && entry.url.startsWith(prefix)),
		waitFor(condition, what, timeoutMs = 10_000) {
			return watched.waitFor(condition, timeoutMs, () => `the slots origin did not see ${what} within ${timeoutMs} ms`);
		},
		async stop() {
			server.closeAllConnections();
			await new Promise<void>((done) => server.close(() => done()));
		},
	};
}

/** The usage a message answer reports: input as the guard estimates it (a token per 4 bytes), output {@link OUTPUT_TOKENS}. */
function usageFor(entry: SlotsRecord): Usage {
	return { input_tokens: Math.ceil(entry.bodyBytes / 4), output_tokens: OUTPUT_TOKENS };
}

export function messageObject(text: string, usage: Usage): Record<string, unknown> {
	return {
		id: "msg_slots",
		type: "message",
		role: "assistant",
		model: "claude-test-1",
		content: [{ type: "text", text }],
		stop_reason: "end_turn",
		stop_sequence: null,
		usage,
	};
}

function answer(req: IncomingMessage, res: ServerResponse, entry: SlotsRecord, changed: () => void): void {
	const method = req.method ?? "";
	const path = (req.url ?? "").split("?")[0] ?? "";
	const behaviour = String(req.headers[BEHAVIOUR_HEADER] ?? "");
	if (behaviour === "hang") {
		// Reads the body, never answers.
	} else if (behaviour === BEHAVIOUR.endlessStream) {
		endlessStream(res, entry, changed);
	} else if (behaviour === BEHAVIOUR.bigJson) {
		bigJson(res, entry, changed);
	} else if (behaviour === BEHAVIOUR.encodedJson) {
		encodedJson(req, res, entry, changed);
	} else if (behaviour === BEHAVIOUR.gzipStream) {
		gzipStream(res, entry, changed);
	} else if (method === "POST" && path === "/v1/messages") {
		const usage = usageFor(entry);
		entry.reported = usage;
		changed();
		json(res, 200, messageObject("ok", usage));
	} else if (method === "POST" && path === "/v1/messages/count_tokens") {
		json(res, 200, { input_tokens: 3 });
	} else if (method === "GET" && path === "/v1/models") {
		json(res, 200, { data: [], has_more: false, first_id: null, last_id: null });
	} else {
		json(res, 404, { type: "error", error: { type: "not_found_error", message: `Not found: ${method} ${path}` } });
	}
}

function json(res: ServerResponse, status: number, body: unknown): void {
	const text = JSON.stringify(body);
	res.writeHead(status, { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)) });
	res.end(text);
}

/** Writes `next()`'s pieces while the connection takes them, waiting for `drain`; stops when `next` answers undefined or the connection closes. */
function writeAsTaken(res: ServerResponse, entry: SlotsRecord, changed: () => void, next: () => Buffer | undefined): void {
	const pump = () => {
		while (!res.destroyed && !res.writableEnded) {
			const piece = next();
			if (piece === undefined) {
				res.end();
				return;
			}
			entry.bytesWritten += piece.byteLength;
			if (!res.write(piece)) {
				changed();
				res.once("drain", pump);
				return;
			}
		}
	};
	pump();
}

function sseEvent(type: string, data: unknown): string {
	return `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}

function streamStart(usage: Usage): string {
	return (
		sseEvent("message_start", { type: "message_start", message: { ...messageObject("", { ...usage, output_tokens: 1 }), content: [], stop_reason: null } }) +
		sseEvent("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } })
	);
}

function streamEnd(usage: Usage): string {
	return (
		sseEvent("content_block_stop", { type: "content_block_stop", index: 0 }) +
		sseEvent("message_delta", { type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: usage.output_tokens } }) +
		sseEvent("message_stop", { type: "message_stop" })
	);
}

function delta(text: string): string {
	return sseEvent("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text } });
}

function endlessStream(res: ServerResponse, entry: SlotsRecord, changed: () => void): void {
	res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
	const text = "x".repeat(1000);
	let started = false;
	writeAsTaken(res, entry, changed, () => {
		if (!started) {
			started = true;
			return Buffer.from(streamStart(usageFor(entry)));
		}
		return Buffer.from(delta(text).repeat(16));
	});
}

function bigJson(res: ServerResponse, entry: SlotsRecord, changed: () => void): void {
	const usage = usageFor(entry);
	const [before, after] = JSON.stringify(messageObject("@", usage)).split("@") as [string, string];
	const padding = BIG_JSON_BYTES - Buffer.byteLength(before) - Buffer.byteLength(after);
	res.writeHead(200, { "content-type": "application/json", "content-length": String(BIG_JSON_BYTES) });
	const piece = Buffer.alloc(64 * 1024, "a");
	let padded = -1;
	writeAsTaken(res, entry, changed, () => {
		if (padded === -1) {
			padded = 0;
			return Buffer.from(before);
		}
		if (padded < padding) {
			const take = Math.min(piece.byteLength, padding - padded);
			padded += take;
			return piece.subarray(0, take);
		}
		if (padded === padding) {
			padded += 1;
			return Buffer.from(after);
		}
		return undefined;
	});
}

/**
 * ASCII text of `bytes` bytes, pseudo-random words (the same for the same length), so that it
 * compresses only about threefold: a large answer stays large once encoded.
 */
export function answerText(bytes: number): string {
	const letters = "abcdefghijklmnopqrstuvwxyz     ";
	let seed = bytes % 2147483647 || 1;
	let text = "";
	while (text.length < bytes) {
		seed = (seed * 48271) % 2147483647;
		text += letters[seed % letters.length];
	}
	return text;
}

export function encode(encoding: string, data: Buffer): Buffer {
	if (encoding === "gzip") return gzipSync(data);
	if (encoding === "deflate") return deflateSync(data);
	if (encoding === "br") return brotliCompressSync(data, { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 4 } });
	throw new Error(`no encoder for ${encoding}`);
}

function encodedJson(req: IncomingMessage, res: ServerResponse, entry: SlotsRecord, changed: () => void): void {
	const encoding = String(req.headers[ENCODING_HEADER] ?? "gzip");
	const framing = String(req.headers[FRAMING_HEADER] ?? "length");
	const text = answerText(Number(req.headers[TEXT_BYTES_HEADER] ?? "100"));
	const usage = usageFor(entry);
	const plain = Buffer.from(JSON.stringify(messageObject(text, usage)));
	const body = encode(encoding, plain);
	entry.reported = usage;
	entry.text = text;
	changed();
	const headers: Record<string, string> = { "content-type": "application/json", "content-encoding": encoding };
	if (framing === "length") headers["content-length"] = String(body.byteLength);
	res.writeHead(200, headers);
	let at = 0;
	writeAsTaken(res, entry, changed, () => {
		if (at >= body.byteLength) return undefined;
		const piece = body.subarray(at, at + 16 * 1024);
		at += piece.byteLength;
		return piece;
	});
}

/** The text deltas of {@link BEHAVIOUR.gzipStream}. */
export const STREAM_DELTAS = ["Hello", ", ", "compressed ", "world", "!"];

function gzipStream(res: ServerResponse, entry: SlotsRecord, changed: () => void): void {
	const usage = usageFor(entry);
	entry.reported = usage;
	entry.text = STREAM_DELTAS.join("");
	changed();
	res.writeHead(200, { "content-type": "text/event-stream", "content-encoding": "gzip", "cache-control": "no-cache" });
	const gzip = createGzip();
	gzip.pipe(res);
	const events = [streamStart(usage), ...STREAM_DELTAS.map(delta), streamEnd(usage)];
	const next = () => {
		const event = events.shift();
		if (event === undefined) {
			gzip.end();
			return;
		}
		entry.bytesWritten += Buffer.byteLength(event);
		gzip.write(event);
		// Flushed event by event, as a streaming origin does; paced so the guard sees several pieces.
		gzip.flush(() => setTimeout(next, 20));
	};
	next();
}

// ------------------------------------------------------------------------------------------------
// Clients

/** A client that sends its request and then reads nothing (its socket paused from the start). */
export interface NonReader {
	readonly socket: Socket;
	/** Resolves once the request is written. */
	readonly sent: Promise<void>;
	destroy(): void;
}

/** Connects, writes `head` (and `body`), and never reads: the receive buffer fills and stays full. */
export function nonReader(baseUrl: string, head: string, body?: string | Uint8Array): NonReader {
	const { hostname, port } = new URL(baseUrl);
	const socket = connect({ port: Number(port), host: hostname });
	socket.pause();
	socket.on("error", () => undefined);
	const sent = new Promise<void>((done, fail) => {
		socket.once("connect", () => {
			socket.pause();
			socket.write(body === undefined ? head : Buffer.concat([Buffer.from(head), Buffer.from(body)]), (error) => (error ? fail(error) : done()));
		});
		socket.once("error", fail);
	});
	sent.catch(() => undefined);
	return { socket, sent, destroy: () => socket.destroy() };
}

/** A raw request whose body writing the caller controls; `sentAt` is when its head was written. */
export interface Upload {
	readonly exchange: RawExchange;
	readonly sentAt: number;
}

/** Opens a connection and writes `head` and the first bytes of a body. */
export function startUpload(baseUrl: string, head: string, first: string | Uint8Array): Upload {
	const exchange = openRaw(baseUrl);
	const sentAt = Date.now();
	exchange.write(Buffer.concat([Buffer.from(head), Buffer.from(first)]));
	return { exchange, sentAt };
}

/**
 * Writes `body` after what was already sent, `bytesPerTick` bytes every `tickMs`, until it is all
 * written or the connection closes; answers a function that stops the drip.
 */
export function drip(exchange: RawExchange, body: Buffer, bytesPerTick: number, tickMs: number): () => void {
	let at = 0;
	const timer = setInterval(() => {
		if (exchange.isClosed() || at >= body.byteLength) {
			clearInterval(timer);
			return;
		}
		exchange.write(body.subarray(at, at + bytesPerTick));
		at += bytesPerTick;
	}, tickMs);
	return () => clearInterval(timer);
}

/** The head of a POST with a JSON body of `length` bytes (declared), the key's headers and extras. */
export function postHead(path: string, key: string, length: number, extra: readonly (readonly [string, string])[] = []): string {
	return requestHead("POST", path, [
		["x-api-key", key],
		["anthropic-version", "2023-06-01"],
		["content-type", "application/json"],
		["content-length", String(length)],
		...extra,
	]);
}

/** The third organisation's probe: a small message, read whole. */
export async function probe(server: LocalServer, key: string, tag: string): Promise<Answer> {
	return fetchAnswer(`${server.url}/v1/messages?case=${tag}`, {
		method: "POST",
		headers: { "x-api-key": key, "anthropic-version": "2023-06-01", "content-type": "application/json" },
		body: messageBody(200).toString(),
	});
}

/**
 * Probes as the third organisation until it is served `200`, for at most `ms`; answers every
 * status it got in order, with the time of the 200 (ms after `since`) when it came. A probe that
 * is refused is repeated after 100 ms (the refusal is immediate, so the loop is bounded by `ms`).
 */
export async function probeUntilServed(
	server: LocalServer,
	key: string,
	tag: string,
	since: number,
	ms: number,
): Promise<{ statuses: number[]; servedAfterMs?: number; last?: Answer }> {
	const statuses: number[] = [];
	let last: Answer | undefined;
	const deadline = since + ms;
	for (;;) {
		last = await probe(server, key, `${tag}-${statuses.length}`);
		statuses.push(last.status);
		if (last.status === 200) return { statuses, servedAfterMs: Date.now() - since, last };
		if (Date.now() > deadline) return { statuses, last };
		await new Promise((done) => setTimeout(done, 100));
	}
}

/** Squeezes a run of equal statuses into `529×12` for messages. */
export function runs(statuses: number[]): string {
	const out: string[] = [];
	let i = 0;
	while (i < statuses.length) {
		let j = i;
		while (j < statuses.length && statuses[j] === statuses[i]) j++;
		out.push(j - i > 1 ? `${statuses[i]}×${j - i}` : String(statuses[i]));
		i = j;
	}
	return out.join(", ");
}

