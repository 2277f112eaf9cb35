import type { ModelInfo } from "@anthropic-ai/sdk/resources/models";
import { jsonResponse, notFound, type RequestContext } from "./http";
import { paginate } from "./list";

function model(id: string, displayName: string, line: ModelInfo["line"], createdAt: string): ModelInfo {
	return {
		type: "model",
		id,
		display_name: displayName,
		created_at: createdAt,
		capabilities: null,
		deprecated_at: null,
		lifecycle: "active",
		line,
		max_input_tokens: 200_000,
		max_tokens: 64_000,
		retires_at: null,
	};
}

/**
 * The models the demo lists, newest first as the API lists them; dates and limits are demo data.
 * None is on the SDK's deprecated list, which would make it print a warning on every call. Any
 * model name works for messages.
 */
const MODELS: readonly ModelInfo[] = [
	model("claude-opus-4-7", "Claude Opus 4.7", "opus", "2026-04-01T00:00:00Z"),
	model("claude-sonnet-4-6", "Claude Sonnet 4.6", "sonnet", "2026-02-01T00:00:00Z"),
	model("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "haiku", "2025-10-01T00:00:00Z"),
];

/** `GET /v1/models`: a list page. */
export function listModels(ctx: RequestContext): Response {
	return jsonResponse(paginate(MODELS, ctx.url));
}

/** `GET /v1/models/:id`: one model, or 404. */
export function getModel(id: string): Response {
	const found = MODELS.find((m) => m.id === id);
	if (found === undefined) throw notFound(`model: ${id}`);
	return jsonResponse(found);
}
