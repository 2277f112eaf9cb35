import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Watched } from "./watched";
import { recordExchange } from "./origin-ends";

/** What the recording origin saw of one request. */
export interface OriginRecord {
	readonly method: string;
	/** Path and query, as received. */
	readonly url: string;
	/** Header names and values in the order and spelling received (`req.rawHeaders`). */
	readonly rawHeaders: readonly string[];
	/** Body bytes received so far. */
	bodyBytes: number;
	/** `complete`: the body ended by its framing; `aborted`: the connection closed or errored first. */
	bodyOutcome: "pending" | "complete" | "aborted";
	/** `answered`: the origin's response was sent whole; `cut`: the connection closed before that. */
	responseOutcome: "pending" | "answered" | "cut";
	/** Whether the test sent it to order events (see {@link SENTINEL_HEADER}). */
	readonly sentinel: boolean;
}

/** A Node HTTP server on 127.0.0.1 that answers like the API and records every request it gets. */
export interface RecordingOrigin {
	/** Its base URL, e.g. `http://127.0.0.1:41234`. */
	readonly url: string;
	/** Every request received, in order of arrival. */
	readonly records: readonly OriginRecord[];
	/** The records the test did not send as sentinels. */
	hostile(): OriginRecord[];
	/** Values of every received header whose name is `name` once `_` reads as `-` and case is ignored. */
	headerValues(record: OriginRecord, name: string): string[];
	/** Resolves once `condition` holds (checked on every change); rejects naming `what` after `timeoutMs`. */
	waitFor(condition: () => boolean, what: string, timeoutMs?: number): Promise<void>;
	/** Requests with `hold` whose body ended and whose answer waits for {@link RecordingOrigin.release}. */
	held(): number;
	/** Answers every held request. */
	release(): void;
	/** Forgets the records so far. */
	clear(): void;
	/** Closes every connection and the server. */
	stop(): Promise<void>;
}

/**
 * The request header that picks a behaviour other than a normal answer:
 * - `hang`: reads the body, never answers;
 * - `stall-after-headers`: once the body has ended, sends `200` headers and part of a JSON body, then nothing;
 * - `stall-error-body`: the same with a `503` error body;
 * - `503`: answers `503` with an error envelope;
 * - `hold`: reads the body, then answers as usual only once the test calls `release()`;
 * - `destroy`: closes the connection without an answer.
 */
export const BEHAVIOUR_HEADER = "x-test-origin";
/** The request header whose value the origin puts in its batches' `results_url`, instead of its own URL. */
export const RESULTS_URL_HEADER = "x-test-results-url";
/** Marks a request the test sends only to learn that the guard has finished with earlier ones. */
export const SENTINEL_HEADER = "x-test-sentinel";

/** A fresh record of `req` as it arrives: nothing of its body seen, no answer sent. */
export function originRecord(req: IncomingMessage): OriginRecord {
	return {
		method: req.method ?? "",
		url: req.url ?? "",
		rawHeaders: [...req.rawHeaders],
		bodyBytes: 0,
		bodyOutcome: "pending",
		responseOutcome: "pending",
		sentinel: req.headers[SENTINEL_HEADER] !== undefined,
	};
}

/** Starts a recording origin on a free loopback port. */
export async function startRecordingOrigin(): Promise<RecordingOrigin> {
	const records: OriginRecord[] = [];
	const watched = new Watched();
	const changed = () => watched.changed();
	let base = "";
	const holding: (() => void)[] = [];
	const server = createServer(function record(req, res) {
		const entry = originRecord(req);
		records.push(entry);
		changed();
		const behaviour = String(req.headers[BEHAVIOUR_HEADER] ?? "");
		if (behaviour === "destroy") {
			req.socket.destroy();
			return;
		}
		recordExchange(entry, req, res, changed, () => {
			if (behaviour !== "hold") return answer(req, res, behaviour, base);
			holding.push(() => answer(req, res, "", base));
			changed();
		});
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
	return {
		url: base,
		records,
		hostile: () => records.filter((entry) => !entry.sentinel),
		headerValues(entry, name) {
			const wanted = normalName(name);
			const values: string[] = [];
			for (let i = 0; i + 1 < entry.rawHeaders.length; i += 2) {
				if (normalName(entry.rawHeaders[i] ?? "") === wanted) values.push(entry.rawHeaders[i + 1] ?? "");
			}
			return values;
		},
		waitFor(condition, what, timeoutMs = 5000) {
			return watched.waitFor(condition, timeoutMs, () => `the recording origin did not see ${what} within ${timeoutMs} ms`);
		},
		held: () => holding.length,
		release() {
			for (const go of holding.splice(0)) go();
			changed();
		},
		clear() {
			records.length = 0;
		},
		async stop() {
			server.closeAllConnections();
			await new Promise<void>((resolve) => server.close(() => resolve()));
		},
	};
}

function normalName(name: string): string {
	return name.toLowerCase().replaceAll("_", "-");
}

const MODEL = { type: "model", id: "claude-test-1", display_name: "Claude Test", created_at: "2026-01-01T00:00:00Z" };

function answer(req: IncomingMessage, res: ServerResponse, behaviour: string, base: string): void {
	switch (behaviour) {
		case "hang":
			break;
		case "stall-after-headers":
			res.writeHead(200, { "content-type": "application/json" });
			res.write('{"data":[');
			break;
		case "stall-error-body":
			res.writeHead(503, { "content-type": "application/json" });
			res.write('{"type":"error","error":{"type":"api_error",');
			break;
		case "503":
			json(res, { status: 503, body: { type: "error", error: { type: "api_error", message: "The origin is unavailable." } } });
			break;
		default:
			json(res, reply(req, base));
	}
}

interface Reply {
	status: number;
	body: unknown;
}

/** The API's answer to a request, in shape only: enough for the guard and the SDKs. */
function reply(req: IncomingMessage, base: string): Reply {
	const method = req.method ?? "";
	const path = (req.url ?? "").split("?")[0] ?? "";
	const id = /^\/v1\/(?:messages\/batches|files|models)\/([^/]+)/.exec(path)?.[1] ?? "";
	const resultsUrl = (batchId: string) => String(req.headers[RESULTS_URL_HEADER] ?? `${base}/v1/messages/batches/${batchId}/results`);
	const batch = (batchId: string) => ({
		id: batchId,
		type: "message_batch",
		processing_status: "ended",
		request_counts: { processing: 0, succeeded: 1, errored: 0, canceled: 0, expired: 0 },
		created_at: "2026-01-01T00:00:00Z",
		ended_at: "2026-01-01T00:01:00Z",
		expires_at: "2026-01-02T00:00:00Z",
		archived_at: null,
		cancel_initiated_at: null,
		results_url: resultsUrl(batchId),
	});
	const ok = (body: unknown): Reply => ({ status: 200, body });
	if (method === "POST" && path === "/v1/messages") {
		// Small usage: the limits' buckets persist between runs, and this origin must not leave debts.
		return ok({
			id: "msg_test",
			type: "message",
			role: "assistant",
			model: "claude-test-1",
			content: [{ type: "text", text: "ok" }],
			stop_reason: "end_turn",
			stop_sequence: null,
			usage: { input_tokens: 3, output_tokens: 2 },
		});
	}
	if (method === "POST" && path === "/v1/messages/count_tokens") return ok({ input_tokens: 3 });
	if (method === "POST" && path === "/v1/messages/batches") return ok(batch("msgbatch_test"));
	if (method === "GET" && path === "/v1/messages/batches") {
		return ok({ data: [batch("msgbatch_test")], has_more: false, first_id: "msgbatch_test", last_id: "msgbatch_test" });
	}
	if (path.startsWith("/v1/messages/batches/")) return ok(method === "DELETE" ? { id, type: "message_batch_deleted" } : batch(id));
	if (path.startsWith("/v1/files/") && method === "DELETE") return ok({ id, type: "file_deleted" });
	if (path.startsWith("/v1/files/")) {
		return ok({ id, type: "file", filename: "a.txt", mime_type: "text/plain", size_bytes: 1, created_at: "2026-01-01T00:00:00Z" });
	}
	if (path === "/v1/models") return ok({ data: [MODEL], has_more: false, first_id: MODEL.id, last_id: MODEL.id });
	if (path.startsWith("/v1/models/")) return ok({ ...MODEL, id });
	return { status: 404, body: { type: "error", error: { type: "not_found_error", message: `Not found: ${method} ${path}` } } };
}

function json(res: ServerResponse, { status, body }: Reply): void {
	const text = JSON.stringify(body);
	res.writeHead(status, { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)) });
	res.end(text);
}
