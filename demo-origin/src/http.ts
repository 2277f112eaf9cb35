/** The `error.type` values this origin answers. */
export type ErrorType = "invalid_request_error" | "not_found_error" | "api_error" | "overloaded_error";

/** What every handler gets: the request, its parsed URL, and the request ID every answer carries. */
export interface RequestContext {
	readonly request: Request;
	readonly url: URL;
	readonly requestId: string;
}

/** An error a handler throws to answer the API's error envelope with `status`. */
export class HttpError extends Error {
	constructor(
		readonly status: number,
		readonly type: ErrorType,
		message: string,
	) {
		super(message);
	}
}

/** 400 `invalid_request_error`. */
export function badRequest(message: string): HttpError {
	return new HttpError(400, "invalid_request_error", message);
}

/** 404 `not_found_error`. */
export function notFound(message: string): HttpError {
	return new HttpError(404, "not_found_error", message);
}

/** A JSON response with the API's content type. */
export function jsonResponse(body: unknown, status = 200): Response {
	return new Response(JSON.stringify(body), {
		status,
		headers: { "content-type": "application/json" },
	});
}

/** The API's error envelope: `{type:"error", error:{type, message}, request_id}`. */
export function errorResponse(status: number, type: ErrorType, message: string, requestId: string): Response {
	return jsonResponse({ type: "error", error: { type, message }, request_id: requestId }, status);
}

/** Whether `value` is a plain JSON object (not an array, not null). */
export function isRecord(value: unknown): value is Record<string, unknown> {
	return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Reads the body as a JSON object; a missing, unparsable or non-object body is a 400. */
export async function readJsonObject(request: Request): Promise<Record<string, unknown>> {
	const text = await request.text();
	if (text.trim() === "") throw badRequest("The request body is empty; expected a JSON object.");
	let parsed: unknown;
	try {
		parsed = JSON.parse(text);
	} catch (error) {
		const detail = error instanceof Error ? error.message : String(error);
		throw badRequest(`The request body is not valid JSON: ${detail}`);
	}
	if (!isRecord(parsed)) throw badRequest("The request body must be a JSON object.");
	return parsed;
}
