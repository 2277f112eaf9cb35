import { errorResponse } from "../errors/error-response";
import { errorTypeForStatus } from "../errors/error-types";
import { parseJsonObject } from "../lib/parse-json";
import { BodyStalledError, readBoundedText } from "../lib/read-bounded";
import { clientResponseHeaders } from "./headers";

/** An origin's error body is read at most this far; past it the guard does not look inside. */
export const ORIGIN_ERROR_READ_LIMIT = 64 * 1024;

const BODY_HEADERS = ["content-type", "content-length", "content-encoding", "content-range", "etag", "last-modified"];

/**
 * Turns an origin's error response (status 400 or more) into the SPEC's envelope with the guard's
 * request ID. An origin envelope keeps its type and message; any other body (an HTML 502 page,
 * plain text, a truncated document) gets the type the SPEC's table gives its status. The status,
 * `retry-after` and other headers the client can use are kept; an origin's own `x-should-retry`
 * wins over the guard's rule. A body that sends nothing for `idleMs` is cut off (`stalled`) and the
 * status's own message is used.
 */
export async function normaliseOriginError(
	upstream: Response,
	requestId: string,
	idleMs: number,
): Promise<{ response: Response; type: string; stalled: boolean }> {
	let stalled = false;
	const text = await readBoundedText(upstream.body, ORIGIN_ERROR_READ_LIMIT, idleMs).catch((error: unknown) => {
		stalled = error instanceof BodyStalledError;
		return undefined;
	});
	const envelope = text === undefined ? undefined : parseEnvelope(text);
	const headers = clientResponseHeaders(upstream.headers, requestId);
	for (const name of BODY_HEADERS) headers.delete(name);
	const originRetry = headers.get("x-should-retry");
	const type = envelope?.type ?? errorTypeForStatus(upstream.status);
	const response = errorResponse({
		status: upstream.status,
		type,
		message: envelope?.message ?? defaultMessage(upstream.status, upstream.statusText),
		requestId,
		headers,
		shouldRetry: originRetry === "true" ? true : originRetry === "false" ? false : undefined,
	});
	return { response, type, stalled };
}

function parseEnvelope(text: string): { type: string; message: string } | undefined {
	const error = parseJsonObject(text)?.error;
	if (typeof error !== "object" || error === null) return undefined;
	const { type, message } = error as { type?: unknown; message?: unknown };
	if (typeof type !== "string" || typeof message !== "string" || type === "") return undefined;
	return { type, message };
}

function defaultMessage(status: number, statusText: string): string {
	const reason = statusText ? ` ${statusText}` : "";
	if (status >= 500) return `The upstream service failed (${status}${reason}). Please retry later.`;
	return `The upstream service rejected the request (${status}${reason}).`;
}
