import { readBoundedText } from "../lib/read-bounded";

/** JSON bodies larger than this pass through without rewriting (and the log line says so). */
export const REWRITE_READ_LIMIT = 4 * 1024 * 1024;

/**
 * Rewrites absolute URLs that the origin put in the named JSON fields (at any depth) so that they
 * point at the guard: the official SDK fetches a batch's `results_url` as given, and a URL on the
 * origin's host would let clients bypass the guard. The origin base's path prefix, if any, is
 * removed, so `https://origin/prefix/v1/x` becomes `https://guard/v1/x`.
 *
 * Returns the new body text, or `undefined` when the body is not JSON, is too large, or has
 * nothing to rewrite (the caller then streams the original).
 */
export function rewriteUrlFields(text: string, fields: readonly string[], guardOrigin: string, originBase: string | undefined): string | undefined {
	let document: unknown;
	try {
		document = JSON.parse(text);
	} catch {
		return undefined;
	}
	let changed = false;
	const names = new Set(fields);
	const visit = (node: unknown): void => {
		if (Array.isArray(node)) {
			for (const item of node) visit(item);
			return;
		}
		if (typeof node !== "object" || node === null) return;
		const record = node as Record<string, unknown>;
		for (const [key, value] of Object.entries(record)) {
			if (names.has(key) && typeof value === "string") {
				const rewritten = toGuardUrl(value, guardOrigin, originBase);
				if (rewritten !== value) {
					record[key] = rewritten;
					changed = true;
				}
			} else {
				visit(value);
			}
		}
	};
	visit(document);
	return changed ? JSON.stringify(document) : undefined;
}

function toGuardUrl(value: string, guardOrigin: string, originBase: string | undefined): string {
	let url: URL;
	try {
		url = new URL(value);
	} catch {
		return value;
	}
	if (url.protocol !== "https:" && url.protocol !== "http:") return value;
	let rest = url.pathname + url.search;
	if (originBase && value.startsWith(`${originBase}/`)) rest = value.slice(originBase.length);
	return guardOrigin + rest;
}

/**
 * Applies {@link rewriteUrlFields} to a response: reads a JSON body (bounded), and answers a new
 * response with the rewritten body, or the untouched response when there is nothing to do.
 */
export async function rewriteResponseUrls(
	response: Response,
	fields: readonly string[],
	guardOrigin: string,
	originBase: string | undefined,
): Promise<Response> {
	const type = response.headers.get("content-type") ?? "";
	if (fields.length === 0 || !type.includes("json") || response.body === null) return response;
	const declared = Number(response.headers.get("content-length") ?? "0");
	if (declared > REWRITE_READ_LIMIT) return response;
	const [probe, original] = response.body.tee();
	const text = await readBoundedText(probe, REWRITE_READ_LIMIT);
	const rewritten = text === undefined ? undefined : rewriteUrlFields(text, fields, guardOrigin, originBase);
	if (rewritten === undefined) return new Response(original, response);
	await original.cancel().catch(() => undefined);
	const headers = new Headers(response.headers);
	headers.delete("content-length");
	headers.delete("content-encoding");
	return new Response(rewritten, { status: response.status, statusText: response.statusText, headers });
}
