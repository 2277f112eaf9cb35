import { parseJsonObject } from "./parse-json";

/** Token usage as an origin reports it; a field is absent until the origin has said it. */
export interface ReportedUsage {
	inputTokens?: number;
	outputTokens?: number;
}

/** JSON bodies are scanned for usage up to this size; a longer one passes through unscanned. */
const JSON_SCAN_LIMIT = 1024 * 1024;
/** An SSE line longer than this is passed through without being looked at. */
const SSE_LINE_LIMIT = 256 * 1024;

/** Reads usage from a body's chunks as they pass; never keeps a chunk beyond the text it needs. */
export interface UsageReader {
	push(chunk: Uint8Array): void;
	/** The body ended (or broke off): what was seen. */
	end(): ReportedUsage;
}

/**
 * Reads the `usage` an origin reports, from a JSON message or from an SSE stream (`message_start`
 * carries input tokens, `message_delta` the running output count).
 */
export function usageReader(kind: "json" | "sse"): UsageReader {
	const usage: ReportedUsage = {};
	const decoder = new TextDecoder();
	let text = "";
	let overflow = false;
	return {
		push(chunk) {
			if (overflow && kind === "json") return;
			text += decoder.decode(chunk, { stream: true });
			if (kind === "json") {
				overflow = text.length > JSON_SCAN_LIMIT;
				return;
			}
			const lines = text.split("\n");
			text = lines.pop() ?? "";
			if (text.length > SSE_LINE_LIMIT) text = "";
			for (const line of lines) if (line.startsWith("data:") && line.includes('"usage"')) readSseEvent(line.slice(5), usage);
		},
		end() {
			if (kind === "json" && !overflow) readUsage(parseJsonObject(text + decoder.decode()), usage);
			return usage;
		},
	};
}

/**
 * A pass-through that reads the `usage` an origin reports (see {@link usageReader}) without
 * holding back or changing a byte: every chunk is forwarded as it arrives. `onEnd` runs once, when
 * the body ends, errors or is cancelled, with what was seen.
 */
export function usageTap(kind: "json" | "sse", onEnd: (usage: ReportedUsage) => void): TransformStream<Uint8Array, Uint8Array> {
	const reader = usageReader(kind);
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

function readSseEvent(data: string, usage: ReportedUsage): void {
	const event = parseJsonObject(data);
	if (event?.type === "message_start") readUsage(event.message, usage);
	else if (event?.type === "message_delta") readUsage(event, usage);
}

function readUsage(holder: unknown, usage: ReportedUsage): void {
	if (typeof holder !== "object" || holder === null) return;
	const reported = (holder as { usage?: unknown }).usage;
	if (typeof reported !== "object" || reported === null) return;
	const { input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens } = reported as Record<string, unknown>;
	if (typeof input_tokens === "number") {
		usage.inputTokens = input_tokens + count(cache_creation_input_tokens) + count(cache_read_input_tokens);
	}
	// message_delta's output count is cumulative, so the latest one is the total.
	if (typeof output_tokens === "number") usage.outputTokens = output_tokens;
}

function count(value: unknown): number {
	return typeof value === "number" && Number.isFinite(value) ? value : 0;
}
