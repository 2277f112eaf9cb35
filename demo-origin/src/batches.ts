import type { DeletedMessageBatch, MessageBatch } from "@anthropic-ai/sdk/resources/messages/batches";
import { badRequest, isRecord, jsonResponse, notFound, type RequestContext, readJsonObject } from "./http";
import { newId, nowRfc3339 } from "./ids";
import { paginate } from "./list";
import { buildMessage, parseMessageParams } from "./messages";
import type { WireBatchResult } from "./wire";

interface StoredBatch {
	/** The batch without `results_url`, which is made per response from the host asked. */
	readonly batch: Omit<MessageBatch, "results_url">;
	readonly results: readonly WireBatchResult[];
}

/**
 * All batches, in creation order. Module-level memory is enough for a demo: it lives as long as
 * the isolate, is not shared between isolates, and is lost on restart.
 */
const batches = new Map<string, StoredBatch>();

const DAY_MS = 24 * 60 * 60 * 1000;
const MAX_REQUESTS = 100_000;

function render(stored: StoredBatch, url: URL): MessageBatch {
	// Absolute, on the host this request reached: the SDK fetches results_url exactly as given.
	return { ...stored.batch, results_url: `${url.origin}/v1/messages/batches/${stored.batch.id}/results` };
}

function find(id: string): StoredBatch {
	const stored = batches.get(id);
	if (stored === undefined) throw notFound(`message_batch: ${id}`);
	return stored;
}

/**
 * `POST /v1/messages/batches`: validates every request, answers each at once, and stores the batch
 * already `ended`, so that its results can be read immediately.
 */
export async function createBatch(ctx: RequestContext): Promise<Response> {
	const body = await readJsonObject(ctx.request);
	const { requests } = body;
	if (requests === undefined) throw badRequest("requests: Field required");
	if (!Array.isArray(requests)) throw badRequest("requests: Input should be a valid list");
	if (requests.length === 0 || requests.length > MAX_REQUESTS) {
		throw badRequest(`requests: a batch holds from 1 to ${MAX_REQUESTS} requests`);
	}
	const seen = new Set<string>();
	const results = requests.map((request: unknown, index): WireBatchResult => {
		const at = `requests.${index}`;
		if (!isRecord(request)) throw badRequest(`${at}: Input should be an object`);
		const customId = request.custom_id;
		if (typeof customId !== "string" || !/^[a-zA-Z0-9_-]{1,64}$/.test(customId)) {
			throw badRequest(`${at}.custom_id: must be 1 to 64 letters, digits, '_' or '-'`);
		}
		if (seen.has(customId)) throw badRequest(`${at}.custom_id: duplicate custom_id ${JSON.stringify(customId)}`);
		seen.add(customId);
		if (!isRecord(request.params)) throw badRequest(`${at}.params: Field required`);
		const params = parseMessageParams(request.params, `${at}.params.`);
		if (params.stream) throw badRequest(`${at}.params.stream: streaming is not supported in batches`);
		return { custom_id: customId, result: { type: "succeeded", message: buildMessage(params, "batch") } };
	});
	const now = nowRfc3339();
	const stored: StoredBatch = {
		batch: {
			id: newId("msgbatch"),
			type: "message_batch",
			processing_status: "ended",
			request_counts: { processing: 0, succeeded: results.length, errored: 0, canceled: 0, expired: 0 },
			created_at: now,
			ended_at: now,
			expires_at: nowRfc3339(DAY_MS),
			cancel_initiated_at: null,
			archived_at: null,
		},
		results,
	};
	batches.set(stored.batch.id, stored);
	return jsonResponse(render(stored, ctx.url));
}

/** `GET /v1/messages/batches`: newest first, as the API lists them. */
export function listBatches(ctx: RequestContext): Response {
	const newestFirst = [...batches.values()].reverse().map((stored) => render(stored, ctx.url));
	return jsonResponse(paginate(newestFirst, ctx.url));
}

/** `GET /v1/messages/batches/:id`. */
export function getBatch(ctx: RequestContext, id: string): Response {
	return jsonResponse(render(find(id), ctx.url));
}

/**
 * `POST /v1/messages/batches/:id/cancel`: every demo batch has already ended, so there is nothing
 * to stop; like the API for a finished batch, it answers the batch unchanged.
 */
export function cancelBatch(ctx: RequestContext, id: string): Response {
	return jsonResponse(render(find(id), ctx.url));
}

/** `DELETE /v1/messages/batches/:id`. */
export function deleteBatch(id: string): Response {
	find(id);
	batches.delete(id);
	const deleted: DeletedMessageBatch = { id, type: "message_batch_deleted" };
	return jsonResponse(deleted);
}

/** `GET /v1/messages/batches/:id/results`: one JSON line per request, in request order. */
export function batchResults(id: string): Response {
	const { results } = find(id);
	const jsonl = results.map((line) => `${JSON.stringify(line)}\n`).join("");
	return new Response(jsonl, {
		headers: {
			"content-type": "application/x-jsonl",
			"content-disposition": `attachment; filename*=utf-8''${id}_results.jsonl`,
		},
	});
}
