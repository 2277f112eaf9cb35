import { scanTopLevelFields } from "./json/top-level-fields";
import { parseJsonObject } from "./parse-json";

/**
 * Token usage as an origin reports it (the API's `usage` and `model`); a field is absent until the
 * origin has said it. `inputTokens` is the API's `input_tokens`: uncached input only.
 */
export interface ReportedUsage {
	inputTokens?: number;
	outputTokens?: number;
	/** Input written to the prompt cache (`cache_creation_input_tokens`). */
	cacheCreationInputTokens?: number;
	/** Input read from the prompt cache (`cache_read_input_tokens`). */
	cacheReadInputTokens?: number;
	/** The model the origin says answered (`model`). */
	model?: string;
	/** Whether the answer's final usage was seen (a JSON message's `usage`, a stream's `message_delta`). */
	finished?: boolean;
	/** UTF-8 bytes of output the guard passed on (a stream's text, thinking and tool-input deltas). */
	deliveredOutputBytes?: number;
}

/** Reads usage from a body's chunks as they pass; never keeps a chunk beyond the bytes it needs. */
export interface UsageReader {
	push(chunk: Uint8Array): void;
	/** The body ended (or broke off): what was seen. */
	end(): ReportedUsage;
}

/** `model` comes early in a message: the first bytes are kept to find it in a long answer. */
const HEAD_BYTES = 16 * 1024;
/** `usage` is a message's last member: the last bytes are kept to find it, however long the answer. */
const TAIL_BYTES = 64 * 1024;
/** The most `"usage"` keys looked at from the end (the last top-level one is almost always the first). */
const MAX_CANDIDATES = 32;

/**
 * Reads the `usage` (and `model`) of a JSON message of any length in bounded memory: an answer that
 * fits in {@link TAIL_BYTES} is parsed whole; a longer one keeps its first {@link HEAD_BYTES} (for
 * `model`) and its last {@link TAIL_BYTES}, where a message's top-level `usage` is. In the tail,
 * the last `"usage"` key whose object is followed by nothing but the rest of the outermost object
 * is taken, so a `usage` nested in the content (a tool's input) is never mistaken for it.
 */
export function usageReader(): UsageReader {
	const head = new Uint8Array(HEAD_BYTES);
	let headLength = 0;
	const tail = new TailBuffer(TAIL_BYTES);
	return {
		push(chunk) {
			if (headLength < HEAD_BYTES) {
				const part = chunk.subarray(0, HEAD_BYTES - headLength);
				head.set(part, headLength);
				headLength += part.length;
			}
			tail.push(chunk);
		},
		end() {
			const usage: ReportedUsage = {};
			const bytes = tail.bytes();
			if (!tail.wrapped) return usageOfJson(bytes);
			const found = usageInTail(new TextDecoder().decode(bytes));
			if (found !== undefined) readUsage({ usage: found }, usage);
			const scan = scanTopLevelFields(["model"]);
			scan.push(head.subarray(0, headLength));
			const model = scan.fields.get("model");
			if (model?.kind === "string") usage.model = model.value;
			usage.finished = usage.outputTokens !== undefined;
			return usage;
		},
	};
}

/**
 * The usage of a JSON message read whole: {@link usageReader}'s answer without copying the bytes
 * through its buffers (a small answer the guard read before handing it on).
 */
export function usageOfBody(bytes: Uint8Array): ReportedUsage {
	if (bytes.byteLength <= TAIL_BYTES) return usageOfJson(bytes);
	const reader = usageReader();
	reader.push(bytes);
	return reader.end();
}

function usageOfJson(bytes: Uint8Array): ReportedUsage {
	const usage: ReportedUsage = {};
	const message = parseJsonObject(new TextDecoder().decode(bytes));
	readUsage(message, usage);
	readModel(message, usage);
	usage.finished = usage.outputTokens !== undefined;
	return usage;
}

/**
 * Copies the `usage` counters of `holder.usage` (a message, or a `message_delta` event) into
 * `usage`: each counter the origin states replaces the one seen before (a `message_delta`'s
 * counts are cumulative, so the latest is the total).
 */
export function readUsage(holder: unknown, usage: ReportedUsage): void {
	if (typeof holder !== "object" || holder === null) return;
	const reported = (holder as { usage?: unknown }).usage;
	if (typeof reported !== "object" || reported === null) return;
	const fields = reported as Record<string, unknown>;
	const input = count(fields.input_tokens);
	const output = count(fields.output_tokens);
	const creation = count(fields.cache_creation_input_tokens);
	const read = count(fields.cache_read_input_tokens);
	if (input !== undefined) usage.inputTokens = input;
	if (output !== undefined) usage.outputTokens = output;
	if (creation !== undefined) usage.cacheCreationInputTokens = creation;
	if (read !== undefined) usage.cacheReadInputTokens = read;
}

/** Copies `holder.model` into `usage` when it is a non-empty string. */
export function readModel(holder: unknown, usage: ReportedUsage): void {
	if (typeof holder !== "object" || holder === null) return;
	const model = (holder as { model?: unknown }).model;
	if (typeof model === "string" && model !== "") usage.model = model;
}

/** A whole number of tokens, or undefined for anything else (a negative or fractional count is not one). */
function count(value: unknown): number | undefined {
	return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

/** The last `limit` bytes of a stream, in a ring: the byte at offset `i` lives at `i % limit`. */
class TailBuffer {
	#bytes = new Uint8Array(0);
	#written = 0;

	constructor(private readonly limit: number) {}

	/** Whether more than `limit` bytes were written (so the start is lost). */
	get wrapped(): boolean {
		return this.#written > this.limit;
	}

	push(chunk: Uint8Array): void {
		const total = this.#written + chunk.length;
		if (total > this.#bytes.length && this.#bytes.length < this.limit) {
			// Grown as needed, so a small answer never costs the whole ring.
			const grown = new Uint8Array(Math.min(this.limit, Math.max(total, this.#bytes.length * 2)));
			grown.set(this.#bytes.subarray(0, Math.min(this.#written, this.#bytes.length)));
			this.#bytes = grown;
		}
		let source = chunk;
		let start = this.#written;
		if (source.length > this.limit) {
			start += source.length - this.limit;
			source = source.subarray(source.length - this.limit);
		}
		const at = start % this.limit;
		const first = Math.min(source.length, this.limit - at);
		this.#bytes.set(source.subarray(0, first), at);
		if (first < source.length) this.#bytes.set(source.subarray(first), 0);
		this.#written = total;
	}

	/** The bytes kept, in order. */
	bytes(): Uint8Array {
		if (!this.wrapped) return this.#bytes.subarray(0, this.#written);
		const at = this.#written % this.limit;
		const ordered = new Uint8Array(this.limit);
		ordered.set(this.#bytes.subarray(at));
		ordered.set(this.#bytes.subarray(0, at), this.limit - at);
		return ordered;
	}
}

/**
 * The top-level `usage` object in the tail of a JSON message (text that may start anywhere inside
 * it): the last `"usage": {...}` whose object is followed only by more members of the outermost
 * object and its closing brace. An unescaped `"usage"` can only be a key or a string value: inside
 * a string every quote is escaped.
 */
export function usageInTail(text: string): Record<string, unknown> | undefined {
	let from = text.length;
	for (let tries = 0; tries < MAX_CANDIDATES && from > 0; tries++) {
		const at = text.lastIndexOf('"usage"', from - 1);
		if (at < 0) return undefined;
		from = at;
		if (escapedQuote(text, at)) continue;
		let i = skipSpace(text, at + 7);
		if (text[i] !== ":") continue;
		i = skipSpace(text, i + 1);
		if (text[i] !== "{") continue;
		const end = valueEnd(text, i);
		if (end < 0 || !closesOutermost(text, end)) continue;
		const usage = parseJsonObject(text.slice(i, end));
		if (usage !== undefined) return usage;
	}
	return undefined;
}

function escapedQuote(text: string, at: number): boolean {
	let backslashes = 0;
	for (let i = at - 1; i >= 0 && text.charCodeAt(i) === 0x5c; i--) backslashes++;
	return backslashes % 2 === 1;
}

function skipSpace(text: string, from: number): number {
	let i = from;
	while (i < text.length && (text[i] === " " || text[i] === "\n" || text[i] === "\r" || text[i] === "\t")) i++;
	return i;
}

/** The offset just past the object or array that opens at `start`, or -1 when it does not close. */
function valueEnd(text: string, start: number): number {
	let depth = 0;
	for (let i = start; i < text.length; i++) {
		const c = text[i];
		if (c === '"') {
			i = stringEnd(text, i);
			if (i < 0) return -1;
		} else if (c === "{" || c === "[") depth++;
		else if (c === "}" || c === "]") {
			depth--;
			if (depth === 0) return i + 1;
		}
	}
	return -1;
}

/** Whether, from `from`, the text closes exactly one more object, with nothing but space after it. */
function closesOutermost(text: string, from: number): boolean {
	let depth = 0;
	for (let i = from; i < text.length; i++) {
		const c = text[i];
		if (c === '"') {
			i = stringEnd(text, i);
			if (i < 0) return false;
		} else if (c === "{" || c === "[") depth++;
		else if (c === "}" || c === "]") {
			depth--;
			if (depth < 0) return c === "}" && skipSpace(text, i + 1) === text.length;
		}
	}
	return false;
}

/** The offset of the quote that closes the string opening at `start`, or -1. */
function stringEnd(text: string, start: number): number {
	for (let i = start + 1; i < text.length; i++) {
		const c = text.charCodeAt(i);
		if (c === 0x5c) i++;
		else if (c === 0x22) return i;
	}
	return -1;
}
