// The small-request benchmark's origin: cheap, and shaped like the API. It reads every request body
// to its end (counting bytes, as a real origin parses it) and answers `POST /v1/messages` with a
// Messages-shaped JSON carrying `usage` (what the guard settles from) and `GET /v1/models` with a
// models list page; anything else is a 404 envelope. The answers state their Content-Length, as an
// origin's JSON over HTTP does (a string body's length is otherwise set by the runtime at the end
// and is not visible to the Worker in front). The caller's `request-id` is echoed, as the demo
// origin does.

const MODELS = ["claude-opus-4-7", "claude-sonnet-4-6", "claude-haiku-4-5-20251001"].map((id, i) => ({
	type: "model",
	id,
	display_name: id,
	created_at: `2026-0${i + 1}-01T00:00:00Z`,
	max_input_tokens: 200000,
	max_tokens: 64000,
}));
const MODELS_PAGE = JSON.stringify({ data: MODELS, has_more: false, first_id: MODELS[0]?.id, last_id: MODELS.at(-1)?.id });

let seq = 0;

/** @param {ReadableStream<Uint8Array> | null} body */
async function drain(body) {
	if (body === null) return 0;
	let bytes = 0;
	for await (const chunk of body) bytes += chunk.byteLength;
	return bytes;
}

/**
 * @param {string} text
 * @param {Record<string, string>} headers
 * @param {number} [status]
 */
function json(text, headers, status = 200) {
	const bytes = new TextEncoder().encode(text);
	return new Response(bytes, { status, headers: { "content-type": "application/json", "content-length": String(bytes.byteLength), ...headers } });
}

export default {
	/** @param {Request} request */
	async fetch(request) {
		const path = new URL(request.url).pathname;
		const bytes = await drain(request.body);
		const requestId = request.headers.get("request-id") ?? `req_origin${++seq}`;
		const headers = { "request-id": requestId };
		if (request.method === "GET" && path === "/v1/models") return json(MODELS_PAGE, headers);
		if (request.method === "POST" && path === "/v1/messages") {
			const message = {
				id: `msg_bench${++seq}`,
				type: "message",
				role: "assistant",
				model: "claude-sonnet-4-6",
				content: [{ type: "text", text: "A short answer from the benchmark's origin." }],
				stop_reason: "end_turn",
				stop_sequence: null,
				usage: { input_tokens: Math.ceil(bytes / 4), output_tokens: 12, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
			};
			return json(JSON.stringify(message), headers);
		}
		return json(JSON.stringify({ type: "error", error: { type: "not_found_error", message: `${request.method} ${path}` } }), headers, 404);
	},
};
