import type { BetaDeletedFile, BetaFileMetadata } from "@anthropic-ai/sdk/resources/beta/files";
import type { Message, MessageTokensCount, RawMessageStreamEvent } from "@anthropic-ai/sdk/resources/messages";
import type { DeletedMessageBatch, MessageBatch, MessageBatchIndividualResponse } from "@anthropic-ai/sdk/resources/messages/batches";
import type { ModelInfo } from "@anthropic-ai/sdk/resources/models";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WireBatchResult, WireMessage, WireStreamEvent, WireTextBlock, WireUsage } from "../../demo-origin/src/wire";
import { type LocalServer, startLocalServer } from "./local-server";

// ---- Compile time: every field the demo writes is a field the official SDK declares, with its type.

/** Whether `W` fits some member of the union `S`. */
type FitsSome<W, S> = true extends (S extends unknown ? Fits<W, S> : never) ? true : false;
/** Whether every member of the union `W` fits some member of `S`. */
type FitsEvery<W, S> = false extends (W extends unknown ? FitsSome<W, S> : never) ? false : true;
/**
 * Whether the JSON shape `W` is what `S` describes with fields left out: arrays item by item, and
 * objects with no key `S` lacks and every value fitting `S`'s (discriminants pick the member).
 */
type Fits<W, S> = [W] extends [readonly (infer WItem)[]]
	? [S] extends [readonly (infer SItem)[]]
		? FitsEvery<WItem, SItem>
		: false
	: [W] extends [object]
		? [S] extends [object]
			? [Exclude<keyof W, keyof S>] extends [never]
				? false extends { [K in keyof W & keyof S]-?: FitsEvery<W[K], S[K]> }[keyof W & keyof S]
					? false
					: true
				: false
			: false
		: [W] extends [S]
			? true
			: false;

// Each line fails to compile if the demo's shape wrote a field the SDK does not have, or a value
// of another type. The last two show that the check can fail.
const fitsStreamEvents: FitsEvery<Exclude<WireStreamEvent, { type: "ping" }>, RawMessageStreamEvent> = true;
const fitsMessage: Fits<WireMessage, Message> = true;
const fitsBatchResult: Fits<WireBatchResult, MessageBatchIndividualResponse> = true;
const anUnknownFieldDoesNot: FitsSome<{ type: "text"; text: string; note: string }, Message["content"][number]> = false;
const aWrongTypeDoesNot: Fits<{ id: number }, Message> = false;

/** The exact keys of a wire shape, checked both ways at compile time (none missing, none extra). */
function keysOf<T>(keys: Record<keyof T, true>): string[] {
	return Object.keys(keys).sort();
}

const MESSAGE_KEYS = keysOf<WireMessage>({ id: true, type: true, role: true, model: true, content: true, stop_reason: true, stop_sequence: true, usage: true });
const USAGE_KEYS = keysOf<WireUsage>({
	input_tokens: true,
	output_tokens: true,
	cache_creation_input_tokens: true,
	cache_read_input_tokens: true,
	cache_creation: true,
	service_tier: true,
});
const TEXT_BLOCK_KEYS = keysOf<WireTextBlock>({ type: true, text: true });
const BATCH_KEYS = keysOf<MessageBatch>({
	id: true,
	type: true,
	processing_status: true,
	request_counts: true,
	created_at: true,
	ended_at: true,
	expires_at: true,
	cancel_initiated_at: true,
	archived_at: true,
	results_url: true,
});
const MODEL_KEYS = keysOf<ModelInfo>({
	id: true,
	type: true,
	display_name: true,
	created_at: true,
	capabilities: true,
	deprecated_at: true,
	lifecycle: true,
	line: true,
	max_input_tokens: true,
	max_tokens: true,
	retires_at: true,
});
const FILE_KEYS = keysOf<Omit<BetaFileMetadata, "scope">>({
	id: true,
	type: true,
	filename: true,
	mime_type: true,
	size_bytes: true,
	created_at: true,
	downloadable: true,
	expires_at: true,
});

// ---- Run time: the answers through the guard have exactly those keys, and null only where the API sends null.

let server: LocalServer;
const headers = { "x-api-key": "sk-demo-key", "anthropic-version": "2023-06-01" };

beforeAll(async () => {
	server = await startLocalServer();
});

afterAll(async () => {
	await server?.stop();
});

async function call(method: string, path: string, body?: unknown): Promise<Response> {
	const init: RequestInit = { method, headers: { ...headers } };
	if (body instanceof FormData) init.body = body;
	else if (body !== undefined) {
		init.body = JSON.stringify(body);
		init.headers = { ...headers, "content-type": "application/json" };
	}
	return fetch(`${server.url}${path}`, init);
}

async function json<T>(method: string, path: string, body?: unknown): Promise<T> {
	const response = await call(method, path, body);
	const text = await response.text();
	expect(response.status, `${method} ${path}: ${text}`).toBe(200);
	return JSON.parse(text) as T;
}

/** Every path in `value` whose value is null, such as `content[0].citations`. */
function nullPaths(value: unknown, at = ""): string[] {
	if (value === null) return [at];
	if (Array.isArray(value)) return value.flatMap((item, index) => nullPaths(item, `${at}[${index}]`));
	if (typeof value === "object") {
		return Object.entries(value as Record<string, unknown>).flatMap(([key, item]) => nullPaths(item, at === "" ? key : `${at}.${key}`));
	}
	return [];
}

function expectMessage(message: WireMessage, nulls: string[] = ["stop_sequence"]): void {
	expect(Object.keys(message).sort()).toEqual(MESSAGE_KEYS);
	expect(Object.keys(message.usage).sort()).toEqual(USAGE_KEYS);
	for (const block of message.content) expect(Object.keys(block).sort()).toEqual(TEXT_BLOCK_KEYS);
	expect(nullPaths(message)).toEqual(nulls);
}

const params = { model: "claude-demo", max_tokens: 64, messages: [{ role: "user", content: "Shapes" }] };

describe("the demo origin's answers have the API's shapes", () => {
	it("writes a message without null citations, container, diagnostics or stop_details", async () => {
		const message = await json<WireMessage>("POST", "/v1/messages", params);
		expectMessage(message);
		expect(message.content).toEqual([{ type: "text", text: expect.stringContaining("Shapes") }]);
		expect(message.usage.service_tier).toBe("standard");
	});

	it("streams events whose message, blocks and deltas carry only what the API writes", async () => {
		const response = await call("POST", "/v1/messages", { ...params, stream: true });
		expect(response.headers.get("content-type")).toContain("text/event-stream");
		const events = (await response.text())
			.split("\n\n")
			.filter((frame) => frame.trim() !== "")
			.map((frame) => {
				const name = /^event: (.+)$/m.exec(frame)?.[1];
				const data = JSON.parse(/^data: (.+)$/m.exec(frame)?.[1] ?? "null") as WireStreamEvent;
				expect(data.type).toBe(name);
				return data;
			});
		expect(events.map((event) => event.type)).toEqual([
			"message_start",
			"content_block_start",
			"ping",
			...events.filter((event) => event.type === "content_block_delta").map(() => "content_block_delta"),
			"content_block_stop",
			"message_delta",
			"message_stop",
		]);
		for (const event of events) {
			if (event.type === "message_start") expectMessage(event.message, ["stop_reason", "stop_sequence"]);
			else if (event.type === "content_block_start") expect(event.content_block).toEqual({ type: "text", text: "" });
			else if (event.type === "message_delta") {
				expect(event.delta).toEqual({ stop_reason: "end_turn", stop_sequence: null });
				expect(Object.keys(event.usage)).toEqual(["output_tokens"]);
			} else expect(nullPaths(event)).toEqual([]);
		}
	});

	it("counts tokens as {input_tokens} only", async () => {
		const count = await json<MessageTokensCount>("POST", "/v1/messages/count_tokens", { model: "claude-demo", messages: params.messages });
		expect(Object.keys(count)).toEqual(["input_tokens"]);
	});

	it("writes batches with the API's fields and results whose messages have no nulls but stop_sequence", async () => {
		const batch = await json<MessageBatch>("POST", "/v1/messages/batches", { requests: [{ custom_id: "one", params }] });
		expect(Object.keys(batch).sort()).toEqual(BATCH_KEYS);
		// Documented as null until the batch is canceled or archived.
		expect(nullPaths(batch).sort()).toEqual(["archived_at", "cancel_initiated_at"]);
		const listed = await json<{ data: MessageBatch[]; has_more: boolean; first_id: string | null; last_id: string | null }>("GET", "/v1/messages/batches?limit=1");
		expect(Object.keys(listed).sort()).toEqual(["data", "first_id", "has_more", "last_id"]);
		expect(Object.keys(listed.data[0] ?? {}).sort()).toEqual(BATCH_KEYS);
		expect(Object.keys(await json<MessageBatch>("GET", `/v1/messages/batches/${batch.id}`)).sort()).toEqual(BATCH_KEYS);
		expect(Object.keys(await json<MessageBatch>("POST", `/v1/messages/batches/${batch.id}/cancel`)).sort()).toEqual(BATCH_KEYS);
		const results = await call("GET", `/v1/messages/batches/${batch.id}/results`);
		const lines = (await results.text()).trim().split("\n").map((line) => JSON.parse(line) as WireBatchResult);
		expect(lines).toHaveLength(1);
		expect(Object.keys(lines[0] ?? {}).sort()).toEqual(["custom_id", "result"]);
		expect(lines[0]?.result.type).toBe("succeeded");
		const message = lines[0]?.result.message;
		if (!message) throw new Error("no message in the result line");
		expectMessage(message);
		expect(message.usage.service_tier).toBe("batch");
		const deleted = await json<DeletedMessageBatch>("DELETE", `/v1/messages/batches/${batch.id}`);
		expect(deleted).toEqual({ id: batch.id, type: "message_batch_deleted" });
	});

	it("writes file metadata with the API's fields, expires_at null only for a file that does not expire", async () => {
		const form = new FormData();
		form.set("file", new Blob(["hello"], { type: "text/plain" }), "hello.txt");
		const file = await json<BetaFileMetadata>("POST", "/v1/files", form);
		expect(Object.keys(file).sort()).toEqual(FILE_KEYS);
		expect(nullPaths(file)).toEqual(["expires_at"]);
		const page = await json<{ data: BetaFileMetadata[]; next_page: string | null }>("GET", "/v1/files?limit=1");
		expect(Object.keys(page.data[0] ?? {}).sort()).toEqual(FILE_KEYS);
		expect(Object.keys(await json<BetaFileMetadata>("GET", `/v1/files/${file.id}`)).sort()).toEqual(FILE_KEYS);
		expect(await (await call("GET", `/v1/files/${file.id}/content`)).text()).toBe("hello");
		const deleted = await json<BetaDeletedFile>("DELETE", `/v1/files/${file.id}`);
		expect(deleted).toEqual({ id: file.id, type: "file_deleted" });
	});

	it("writes models with every field the SDK declares, null only where an active model has no value", async () => {
		const page = await json<{ data: ModelInfo[] }>("GET", "/v1/models");
		expect(page.data.length).toBeGreaterThan(0);
		for (const model of page.data) {
			expect(Object.keys(model).sort()).toEqual(MODEL_KEYS);
			expect(nullPaths(model).sort()).toEqual(["capabilities", "deprecated_at", "retires_at"]);
		}
		const first = page.data[0];
		if (!first) throw new Error("no models");
		expect(await json<ModelInfo>("GET", `/v1/models/${first.id}`)).toEqual(first);
	});

	it("compiles the shape checks above, including the two that must fail", () => {
		expect([fitsMessage, fitsBatchResult, fitsStreamEvents]).toEqual([true, true, true]);
		expect([anUnknownFieldDoesNot, aWrongTypeDoesNot]).toEqual([false, false]);
	});
});
