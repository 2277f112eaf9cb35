import type { MessageTokensCount } from "@anthropic-ai/sdk/resources/messages";
import type { StreamFault } from "./faults";
import { badRequest, isRecord, jsonResponse, type RequestContext, readJsonObject } from "./http";
import { newId } from "./ids";
import { type SseEvent, sseResponse } from "./sse";
import type { WireMessage, WireStreamEvent, WireUsage } from "./wire";

/** The validated part of a create-message body that the demo answer depends on. */
export interface MessageParams {
	readonly model: string;
	readonly maxTokens: number;
	readonly messages: readonly unknown[];
	readonly stream: boolean;
}

/** Silence between two events of a normal stream, so each leaves as its own write. */
const STREAM_GAP_MS = 10;
/** How much of the user's last text the reply quotes. */
const QUOTE_CHARS = 200;
const encoder = new TextEncoder();

/**
 * Validates a create-message body (also each batch request's `params`); errors name the field
 * with `prefix` in front, as the API does (`requests.0.params.max_tokens: Field required`).
 */
export function parseMessageParams(body: Record<string, unknown>, prefix = ""): MessageParams {
	const { model, messages } = parseCountTokensParams(body, prefix);
	const maxTokens = body.max_tokens;
	if (maxTokens === undefined) throw badRequest(`${prefix}max_tokens: Field required`);
	if (typeof maxTokens !== "number" || !Number.isInteger(maxTokens) || maxTokens < 1) {
		throw badRequest(`${prefix}max_tokens: Input should be a positive integer`);
	}
	const stream = body.stream ?? false;
	if (typeof stream !== "boolean") throw badRequest(`${prefix}stream: Input should be a valid boolean`);
	return { model, maxTokens, messages, stream };
}

/** Validates a count-tokens body: `model` and `messages`, as for create but without `max_tokens`. */
export function parseCountTokensParams(body: Record<string, unknown>, prefix = ""): { model: string; messages: unknown[] } {
	const { model, messages } = body;
	if (model === undefined) throw badRequest(`${prefix}model: Field required`);
	if (typeof model !== "string" || model === "") throw badRequest(`${prefix}model: Input should be a non-empty string`);
	if (messages === undefined) throw badRequest(`${prefix}messages: Field required`);
	if (!Array.isArray(messages)) throw badRequest(`${prefix}messages: Input should be a valid list`);
	if (messages.length === 0) throw badRequest(`${prefix}messages: at least one message is required`);
	messages.forEach((message: unknown, index) => {
		const at = `${prefix}messages.${index}`;
		if (!isRecord(message)) throw badRequest(`${at}: Input should be an object`);
		if (message.role !== "user" && message.role !== "assistant") {
			throw badRequest(`${at}.role: Input should be 'user' or 'assistant'`);
		}
		if (typeof message.content !== "string" && !Array.isArray(message.content)) {
			throw badRequest(`${at}.content: Input should be a string or a list of content blocks`);
		}
	});
	return { model, messages };
}

/** The demo's token estimate: a quarter of the UTF-8 bytes of the re-serialised `messages`, rounded up. */
export function estimateInputTokens(messages: readonly unknown[]): number {
	return Math.ceil(encoder.encode(JSON.stringify(messages)).byteLength / 4);
}

/** The deterministic reply: it quotes the text of the last user message. */
export function replyText(messages: readonly unknown[]): string {
	let quoted = "";
	for (let i = messages.length - 1; i >= 0 && quoted === ""; i--) {
		const message = messages[i];
		if (isRecord(message) && message.role === "user") quoted = textOf(message.content);
	}
	quoted = quoted.replace(/\s+/g, " ").trim();
	if (quoted === "") quoted = "(no text)";
	const chars = Array.from(quoted);
	if (chars.length > QUOTE_CHARS) quoted = `${chars.slice(0, QUOTE_CHARS).join("")}…`;
	return `Hello from the demo origin. You said: "${quoted}"`;
}

function textOf(content: unknown): string {
	if (typeof content === "string") return content;
	if (!Array.isArray(content)) return "";
	return content
		.map((block: unknown) => (isRecord(block) && block.type === "text" && typeof block.text === "string" ? block.text : ""))
		.filter((text) => text !== "")
		.join(" ");
}

function outputTokens(text: string): number {
	return Math.max(1, Math.ceil(encoder.encode(text).byteLength / 4));
}

/**
 * A complete message answering `params`, as the non-streaming API (`service_tier` "standard") and
 * batch results ("batch") write it: no field the API leaves out, so no `null` a strict client
 * would refuse (see ./wire.ts).
 */
export function buildMessage(params: Pick<MessageParams, "model" | "messages">, serviceTier: "standard" | "batch" = "standard"): WireMessage {
	const text = replyText(params.messages);
	return {
		id: newId("msg"),
		type: "message",
		role: "assistant",
		model: params.model,
		content: [{ type: "text", text }],
		stop_reason: "end_turn",
		stop_sequence: null,
		usage: usage(estimateInputTokens(params.messages), outputTokens(text), serviceTier),
	};
}

function usage(inputTokens: number, outputTokenCount: number, serviceTier: "standard" | "batch"): WireUsage {
	return {
		input_tokens: inputTokens,
		cache_creation_input_tokens: 0,
		cache_read_input_tokens: 0,
		cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 },
		output_tokens: outputTokenCount,
		service_tier: serviceTier,
	};
}

/**
 * The real stream's event sequence for `message`: message_start, content_block_start, ping, one
 * text_delta per word or so, content_block_stop, message_delta, message_stop.
 */
export function streamEvents(message: WireMessage): SseEvent[] {
	const block = message.content[0];
	const text = block?.type === "text" ? block.text : "";
	const events: WireStreamEvent[] = [
		{
			type: "message_start",
			message: {
				...message,
				content: [],
				stop_reason: null,
				stop_sequence: null,
				usage: { ...message.usage, output_tokens: 1 },
			},
		},
		{ type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
		{ type: "ping" },
		...textChunks(text).map((chunk) => ({ type: "content_block_delta" as const, index: 0, delta: { type: "text_delta" as const, text: chunk } })),
		{ type: "content_block_stop", index: 0 },
		{
			type: "message_delta",
			delta: { stop_reason: "end_turn", stop_sequence: null },
			usage: { output_tokens: message.usage.output_tokens },
		},
		{ type: "message_stop" },
	];
	return events.map((data) => ({ event: data.type, data }));
}

/** At least three pieces, each a word with its trailing space, that join back into `text`. */
function textChunks(text: string): string[] {
	const words = text.match(/\S+\s*/g) ?? [];
	if (words.length >= 3) return words;
	const chars = Array.from(text.padEnd(3, "."));
	const size = Math.ceil(chars.length / 3);
	return [0, 1, 2].map((i) => chars.slice(i * size, (i + 1) * size).join(""));
}

/** `POST /v1/messages`: a Message, or with `"stream": true` its SSE stream; `fault` breaks or slows the stream. */
export async function createMessage(ctx: RequestContext, fault: StreamFault | null): Promise<Response> {
	const params = parseMessageParams(await readJsonObject(ctx.request));
	if (fault !== null && !params.stream) {
		throw badRequest(`x-demo-fault: ${fault.kind} applies only to streaming requests ("stream": true)`);
	}
	const message = buildMessage(params);
	if (!params.stream) return jsonResponse(message);
	const events = streamEvents(message);
	const signal = ctx.request.signal;
	if (fault?.kind === "stream-abort") {
		// message_start, content_block_start, one text delta, then the connection breaks.
		const withoutPing = events.filter((e) => e.event !== "ping");
		return sseResponse({ events: withoutPing, gapMs: STREAM_GAP_MS, breakAfter: 3 }, signal);
	}
	if (fault?.kind === "slow-stream") {
		return sseResponse({ events, gapMs: STREAM_GAP_MS, pause: { beforeIndex: 1, ms: fault.delayMs } }, signal);
	}
	return sseResponse({ events, gapMs: STREAM_GAP_MS }, signal);
}

/** `POST /v1/messages/count_tokens`: `{input_tokens}` by the same estimate as create. */
export async function countTokens(ctx: RequestContext): Promise<Response> {
	const { messages } = parseCountTokensParams(await readJsonObject(ctx.request));
	const count: MessageTokensCount = { input_tokens: estimateInputTokens(messages) };
	return jsonResponse(count);
}
