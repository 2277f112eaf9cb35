// The origin of `npm run bench -- locations`: a Node HTTP server on loopback that answers
// `POST /v1/messages` like the API, with usage the bench knows in advance, and records what it
// received of every request, so what the guard admitted is measured at the origin, not taken from
// the guard's word.
//
// Usage it reports: input_tokens = ceil(body bytes / 4) (the guard's own estimate of a body),
// output_tokens = the request's max_tokens (the most a claim may be for). A request with
// `"stream": true` is answered with an event stream (message_start, text deltas worth the output,
// message_delta with the usage, message_stop), any other with a JSON message. Answers wait
// `delayMs` first (a stream spreads it over its events), so a burst's requests are in flight
// together as a model's would be.
import { createServer } from "node:http";

/** The request header that names a bench request (organisation, sequence, kind); any other request is recorded untagged. */
export const TAG_HEADER = "x-bench-tag";

/**
 * @typedef {object} OriginRecord
 * @property {string} tag the bench's tag, or "" when the request had none
 * @property {string} org the organisation the tag names (its first `/`-separated part)
 * @property {number} bytes body bytes received
 * @property {"pending" | "complete" | "aborted"} body `complete`: the body ended by its framing
 * @property {"pending" | "answered" | "cut" | "refused"} answer `answered`: the whole answer was sent; `refused`: the body was not a message
 * @property {number} inputTokens reported (0 unless answered)
 * @property {number} outputTokens reported (0 unless answered)
 * @property {boolean} stream
 */

/**
 * Starts the origin on a free loopback port.
 * @param {{ delayMs: number }} options
 */
export async function startLocationsOrigin({ delayMs }) {
	/** @type {OriginRecord[]} */
	const records = [];
	const sockets = new Set();
	const server = createServer((req, res) => {
		const tag = String(req.headers[TAG_HEADER] ?? "");
		/** @type {OriginRecord} */
		const record = { tag, org: tag.split("/")[0] ?? "", bytes: 0, body: "pending", answer: "pending", inputTokens: 0, outputTokens: 0, stream: false };
		records.push(record);
		/** @type {Buffer[]} */
		const chunks = [];
		req.on("data", (chunk) => {
			record.bytes += chunk.length;
			chunks.push(chunk);
		});
		req.on("end", () => {
			record.body = "complete";
			answer(req, res, record, Buffer.concat(chunks), delayMs);
		});
		req.on("error", () => undefined);
		res.on("close", () => {
			if (record.body === "pending") record.body = "aborted";
			if (record.answer === "pending") record.answer = "cut";
		});
	});
	server.on("connection", (socket) => {
		sockets.add(socket);
		socket.on("close", () => sockets.delete(socket));
	});
	server.keepAliveTimeout = 5000;
	await new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(undefined)));
	const address = /** @type {import("node:net").AddressInfo} */ (server.address());
	return {
		url: `http://127.0.0.1:${address.port}`,
		/** @param {string} org */
		recordsOf: (org) => records.filter((record) => record.org === org),
		/** Records of requests that were not the bench's (should be none). */
		untagged: () => records.filter((record) => record.tag === ""),
		/** Requests whose body or answer has not ended yet. */
		open: () => records.filter((record) => record.body === "pending" || record.answer === "pending").length,
		dispose: async () => {
			for (const socket of sockets) socket.destroy();
			await new Promise((resolve) => server.close(() => resolve(undefined)));
		},
	};
}

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * @param {import("node:http").IncomingMessage} req
 * @param {import("node:http").ServerResponse} res
 * @param {OriginRecord} record
 * @param {Buffer} body
 * @param {number} delayMs
 */
async function answer(req, res, record, body, delayMs) {
	const requestId = String(req.headers["request-id"] ?? `req_origin_${record.tag}`);
	/** @type {{ max_tokens?: unknown, stream?: unknown, model?: unknown } | undefined} */
	let message;
	try {
		message = req.method === "POST" && (req.url ?? "").split("?")[0] === "/v1/messages" ? JSON.parse(body.toString("utf8")) : undefined;
	} catch {
		message = undefined;
	}
	if (message === undefined || typeof message !== "object" || message === null) {
		record.answer = "refused";
		const text = JSON.stringify({ type: "error", error: { type: "invalid_request_error", message: `the bench origin takes only POST /v1/messages with a JSON body (${req.method} ${req.url})` } });
		res.writeHead(400, { "content-type": "application/json", "content-length": Buffer.byteLength(text), "request-id": requestId });
		res.end(text);
		return;
	}
	const inputTokens = Math.ceil(record.bytes / 4);
	const outputTokens = Number.isInteger(message.max_tokens) ? Number(message.max_tokens) : 1;
	const model = typeof message.model === "string" ? message.model : "claude-sonnet-4-6";
	const id = `msg_bench_${record.tag.replaceAll(/[^A-Za-z0-9]/g, "_")}`;
	res.on("finish", () => {
		if (record.answer === "pending") {
			record.answer = "answered";
			record.inputTokens = inputTokens;
			record.outputTokens = outputTokens;
		}
	});
	if (message.stream === true) {
		record.stream = true;
		res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", "request-id": requestId });
		const event = (/** @type {string} */ type, /** @type {unknown} */ data) => res.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
		const usage = { input_tokens: inputTokens, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
		event("message_start", { type: "message_start", message: { id, type: "message", role: "assistant", model, content: [], stop_reason: null, stop_sequence: null, usage } });
		event("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } });
		// The text is worth the output at 4 bytes a token, in five deltas spread over the delay.
		const text = "x".repeat(outputTokens * 4);
		const step = Math.ceil(text.length / 5);
		for (let at = 0; at < text.length; at += step) {
			await sleep(delayMs / 5);
			if (res.destroyed) return;
			event("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: text.slice(at, at + step) } });
		}
		event("content_block_stop", { type: "content_block_stop", index: 0 });
		event("message_delta", { type: "message_delta", delta: { stop_reason: "max_tokens", stop_sequence: null }, usage: { output_tokens: outputTokens } });
		event("message_stop", { type: "message_stop" });
		res.end();
		return;
	}
	await sleep(delayMs);
	if (res.destroyed) return;
	const text = JSON.stringify({
		id,
		type: "message",
		role: "assistant",
		model,
		content: [{ type: "text", text: "An answer from the locations bench's origin." }],
		stop_reason: "max_tokens",
		stop_sequence: null,
		usage: { input_tokens: inputTokens, output_tokens: outputTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
	});
	res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text), "request-id": requestId });
	res.end(text);
}
