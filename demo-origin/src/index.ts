/**
 * The demo origin: an in-memory imitation of the Anthropic API (messages and their streams, token
 * counts, message batches, files, models) close enough for the official SDK, with faults that tests
 * switch on per request with the `x-demo-fault` header. It is what the edge guard sits in front of
 * in the local stack; state lives in this isolate's memory only.
 */
import { batchResults, cancelBatch, createBatch, deleteBatch, getBatch, listBatches } from "./batches";
import { FAULT_HEADER, hang, html502, readFault, type StreamFault } from "./faults";
import { deleteFile, fileContent, getFile, listFiles, uploadFile } from "./files";
import { badRequest, errorResponse, HttpError, notFound, type RequestContext } from "./http";
import { newId } from "./ids";
import { sleep } from "./sleep";
import { countTokens, createMessage } from "./messages";
import { getModel, listModels } from "./models";

interface Route {
	readonly method: string;
	/** Matches the whole path; its one capture group, if any, is the object ID. */
	readonly pattern: RegExp;
	readonly handle: (ctx: RequestContext, id: string, fault: StreamFault | null) => Response | Promise<Response>;
	/** Only message creation can stream, so only it takes the stream faults. */
	readonly streamFaults?: true;
}

const ID = "([^/]+)";
const ROUTES: readonly Route[] = [
	{ method: "POST", pattern: /^\/v1\/messages$/, handle: (ctx, _id, fault) => createMessage(ctx, fault), streamFaults: true },
	{ method: "POST", pattern: /^\/v1\/messages\/count_tokens$/, handle: (ctx) => countTokens(ctx) },
	{ method: "POST", pattern: /^\/v1\/messages\/batches$/, handle: (ctx) => createBatch(ctx) },
	{ method: "GET", pattern: /^\/v1\/messages\/batches$/, handle: (ctx) => listBatches(ctx) },
	{ method: "GET", pattern: new RegExp(`^/v1/messages/batches/${ID}$`), handle: (ctx, id) => getBatch(ctx, id) },
	{ method: "DELETE", pattern: new RegExp(`^/v1/messages/batches/${ID}$`), handle: (_ctx, id) => deleteBatch(id) },
	{ method: "POST", pattern: new RegExp(`^/v1/messages/batches/${ID}/cancel$`), handle: (ctx, id) => cancelBatch(ctx, id) },
	{ method: "GET", pattern: new RegExp(`^/v1/messages/batches/${ID}/results$`), handle: (_ctx, id) => batchResults(id) },
	{ method: "POST", pattern: /^\/v1\/files$/, handle: (ctx) => uploadFile(ctx) },
	{ method: "GET", pattern: /^\/v1\/files$/, handle: (ctx) => listFiles(ctx) },
	{ method: "GET", pattern: new RegExp(`^/v1/files/${ID}$`), handle: (_ctx, id) => getFile(id) },
	{ method: "DELETE", pattern: new RegExp(`^/v1/files/${ID}$`), handle: (_ctx, id) => deleteFile(id) },
	{ method: "GET", pattern: new RegExp(`^/v1/files/${ID}/content$`), handle: (_ctx, id) => fileContent(id) },
	{ method: "GET", pattern: /^\/v1\/models$/, handle: (ctx) => listModels(ctx) },
	{ method: "GET", pattern: new RegExp(`^/v1/models/${ID}$`), handle: (_ctx, id) => getModel(id) },
];

/** The demo origin's bindings: its number among several (`npm start -- --origins 2`), default 1. */
interface DemoEnv {
	readonly DEMO_ORIGIN_INDEX?: string;
}

async function route(ctx: RequestContext, origin: string): Promise<Response> {
	const fault = readFault(ctx.request, origin);
	if (fault?.kind === "html-502") return html502();
	if (fault?.kind === "hang") return hang(ctx.request.signal);
	if (fault?.kind === "overloaded") throw new HttpError(529, "overloaded_error", "Overloaded");
	// Any route, answered normally once the delay has passed (or nothing, if the caller left).
	if (fault?.kind === "slow" && !(await sleep(fault.delayMs, ctx.request.signal))) return new Response(null, { status: 499 });
	const { method } = ctx.request;
	const path = ctx.url.pathname;
	for (const candidate of ROUTES) {
		const match = candidate.method === method ? candidate.pattern.exec(path) : null;
		if (match === null) continue;
		if (fault !== null && fault.kind !== "slow" && candidate.streamFaults !== true) {
			throw badRequest(`${FAULT_HEADER}: ${fault.kind} applies only to POST /v1/messages`);
		}
		const streamFault = fault?.kind === "stream-abort" || fault?.kind === "slow-stream" ? fault : null;
		return candidate.handle(ctx, decodeId(match[1] ?? ""), streamFault);
	}
	throw notFound(`Not found: ${method} ${path}`);
}

function decodeId(raw: string): string {
	try {
		return decodeURIComponent(raw);
	} catch {
		return raw;
	}
}

export default {
	async fetch(request, env): Promise<Response> {
		// Echo the caller's request ID (the guard's) so both sides log the same one.
		const requestId = request.headers.get("request-id") || newId("req");
		let response: Response;
		try {
			response = await route({ request, url: new URL(request.url), requestId }, env.DEMO_ORIGIN_INDEX ?? "1");
		} catch (error) {
			response =
				error instanceof HttpError
					? errorResponse(error.status, error.type, error.message, requestId)
					: errorResponse(500, "api_error", `Internal server error: ${error instanceof Error ? error.message : String(error)}`, requestId);
		}
		response.headers.set("request-id", requestId);
		return response;
	},
} satisfies ExportedHandler<DemoEnv>;
