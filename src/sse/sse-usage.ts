import { parseJsonObject } from "../lib/parse-json";
import { type ReportedUsage, readModel, readUsage, type UsageReader } from "../lib/usage-tap";
import { FrameScanner } from "./sse-frames";

/** An event longer than this is passed over without being looked at (usage events are small). */
const EVENT_LIMIT = 256 * 1024;

/**
 * Reads the usage an event stream reports, with the stream guard's own frame parser
 * ({@link FrameScanner}: lines end at CRLF, LF or CR, an event at an empty line, however the
 * stream is split): `message_start` carries the model and the input counts, each
 * `message_delta` the running (cumulative) counts. Only whole events are decoded; a partial one is
 * held, up to {@link EVENT_LIMIT}.
 */
export function sseUsageReader(): UsageReader {
	const usage: ReportedUsage = {};
	const scanner = new FrameScanner();
	const decoder = new TextDecoder();
	let held: Uint8Array[] = [];
	let heldBytes = 0;
	/** The event being held grew past the limit: the text up to the next event end is not one. */
	let skipping = false;

	const hold = (part: Uint8Array) => {
		if (part.length === 0 || skipping) return;
		if (heldBytes + part.length > EVENT_LIMIT) {
			skipping = true;
			held = [];
			heldBytes = 0;
			return;
		}
		// Copied: the chunk belongs to the stream it came from.
		held.push(part.slice());
		heldBytes += part.length;
	};
	return {
		push(chunk) {
			const end = scanner.scan(chunk);
			if (end === -1) return hold(chunk);
			const whole = joined([...held, chunk.subarray(0, end)]);
			readEvents(decoder.decode(whole), usage, skipping);
			held = [];
			heldBytes = 0;
			skipping = false;
			hold(chunk.subarray(end));
		},
		end() {
			return usage;
		},
	};
}

/**
 * A pass-through that reads the usage of an event stream (see {@link sseUsageReader}) without
 * holding back or changing a byte: every chunk is forwarded as it arrives. `onEnd` runs once, when
 * the stream ends, errors or is cancelled, with what was seen.
 */
export function sseUsageTap(onEnd: (usage: ReportedUsage) => void, reader: UsageReader = sseUsageReader()): TransformStream<Uint8Array, Uint8Array> {
	let ended = false;
	const finish = () => {
		if (ended) return;
		ended = true;
		onEnd(reader.end());
	};
	return new TransformStream<Uint8Array, Uint8Array>({
		transform(chunk, controller) {
			controller.enqueue(chunk);
			reader.push(chunk);
		},
		flush: finish,
		cancel: finish,
	});
}

/** Reads the events of `text` (whole events); the first is dropped when it is the end of one passed over. */
function readEvents(text: string, usage: ReportedUsage, dropFirst: boolean): void {
	let data: string[] = [];
	let drop = dropFirst;
	for (const line of text.split(/\r\n|\r|\n/)) {
		if (line === "") {
			if (!drop && data.length > 0) readEvent(data.join("\n"), usage);
			drop = false;
			data = [];
		} else if (line.startsWith("data:")) {
			data.push(line.slice(line[5] === " " ? 6 : 5));
		}
	}
}

function readEvent(data: string, usage: ReportedUsage): void {
	if (data.includes('"content_block_delta"')) {
		const event = parseJsonObject(data);
		if (event?.type === "content_block_delta") usage.deliveredOutputBytes = (usage.deliveredOutputBytes ?? 0) + deltaBytes(event.delta);
		return;
	}
	if (!data.includes('"usage"')) return;
	const event = parseJsonObject(data);
	if (event?.type === "message_start") {
		readUsage(event.message, usage);
		readModel(event.message, usage);
	} else if (event?.type === "message_delta") {
		readUsage(event, usage);
		usage.finished = true;
	}
}

const encoder = new TextEncoder();

/** The output a delta carries: its text, thinking or tool input (JSON text), in UTF-8 bytes. */
function deltaBytes(delta: unknown): number {
	if (typeof delta !== "object" || delta === null) return 0;
	const { text, partial_json: json, thinking } = delta as Record<string, unknown>;
	const part = typeof text === "string" ? text : typeof json === "string" ? json : typeof thinking === "string" ? thinking : "";
	return part.length === 0 ? 0 : encoder.encode(part).byteLength;
}

function joined(parts: Uint8Array[]): Uint8Array {
	if (parts.length === 1) return parts[0] as Uint8Array;
	const total = parts.reduce((sum, part) => sum + part.length, 0);
	const out = new Uint8Array(total);
	let at = 0;
	for (const part of parts) {
		out.set(part, at);
		at += part.length;
	}
	return out;
}
