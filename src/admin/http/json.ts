import { GuardError } from "../../errors/guard-error";
import { parseJsonObject } from "../../lib/parse-json";
import { readBoundedText } from "../../lib/read-bounded";

/** The largest admin request body read, in bytes. */
export const MAX_ADMIN_BODY_BYTES = 16 * 1024;
const BODY_IDLE_MS = 10_000;

/** An admin answer: JSON, never cached by anyone. */
export function jsonAnswer(status: number, body: unknown): Response {
	const bytes = new TextEncoder().encode(JSON.stringify(body));
	return new Response(bytes, {
		status,
		headers: { "content-type": "application/json", "cache-control": "no-store", "content-length": String(bytes.byteLength) },
	});
}

/**
 * The JSON object an admin request sends: `content-type: application/json`, at most 16 KiB.
 * Anything else is `400 invalid_request_error` (`413` over the size) saying what was wrong.
 */
export async function readJsonObject(request: Request): Promise<Record<string, unknown>> {
	const type = (request.headers.get("content-type") ?? "").split(";")[0]?.trim().toLowerCase();
	if (type !== "application/json") throw new GuardError(400, `content-type: the admin API takes application/json, got ${type ? JSON.stringify(type) : "none"}`);
	const text = await readBoundedText(request.body, MAX_ADMIN_BODY_BYTES, BODY_IDLE_MS).catch(() => {
		throw new GuardError(408, "The request body did not arrive in time.");
	});
	if (text === undefined) throw new GuardError(413, `The request body is over the admin API's limit of ${MAX_ADMIN_BODY_BYTES} bytes.`, { type: "request_too_large" });
	const body = parseJsonObject(text);
	if (body === undefined) throw new GuardError(400, "The request body must be a JSON object.");
	return body;
}

/**
 * A whole-number query parameter from `min` to `max`; `fallback` when absent. Anything else is
 * `400` naming the parameter.
 */
export function wholeParam(url: URL, name: string, min: number, max: number, fallback: number): number {
	const raw = url.searchParams.get(name);
	if (raw === null) return fallback;
	const value = /^\d{1,9}$/.test(raw) ? Number(raw) : Number.NaN;
	if (!(value >= min && value <= max)) throw new GuardError(400, `${name}: must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw.slice(0, 40))}`);
	return value;
}

/** Refuses fields a body may not have: a misspelt field must not be silently ignored. */
export function onlyFields(body: Record<string, unknown>, allowed: readonly string[]): void {
	const unknown = Object.keys(body).find((field) => !allowed.includes(field));
	if (unknown !== undefined) throw new GuardError(400, `${unknown.slice(0, 64)}: unknown field; expected ${allowed.join(", ")}`);
}
