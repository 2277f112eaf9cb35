import { declaredLength } from "../lib/content-length";
import { readBoundedText } from "../lib/read-bounded";

/** JSON bodies larger than this pass through without rewriting (and the log line says so). */
export const REWRITE_READ_LIMIT = 4 * 1024 * 1024;

/**
 * Rewrites the origin's own absolute URLs in the named JSON fields (at any depth) so that they
 * point at the guard's public base: the official SDK fetches a batch's `results_url` as given, and
 * a URL on the origin's host would let clients bypass the guard. Only an absolute http(s) URL
 * under `originBase` (same scheme, host and port, and under its path) is rewritten, with that
 * path prefix removed, so `https://origin/prefix/v1/x` becomes `https://guard/v1/x`; anything else
 * (a third party's URL, a scheme-relative `//host/x`, `javascript:`) is left exactly as it is.
 *
 * Returns the new body text, or `undefined` when the body is not JSON, is too large, or has
 * nothing to rewrite (the caller then streams the original).
 */
export function rewriteUrlFields(text: string, fields: readonly string[], guardBase: string, originBase: string): string | undefined {
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
				const rewritten = toGuardUrl(value, guardBase, originBase);
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

function toGuardUrl(value: string, guardBase: string, originBase: string): string {
	let url: URL;
	let base: URL;
	try {
		url = new URL(value);
		base = new URL(originBase);
	} catch {
		return value;
	}
	if (url.protocol !== "https:" && url.protocol !== "http:") return value;
	if (url.origin !== base.origin) return value;
	const prefix = base.pathname.replace(/\/$/, "");
	if (prefix !== "" && url.pathname !== prefix && !url.pathname.startsWith(`${prefix}/`)) return value;
	return guardBase + url.pathname.slice(prefix.length) + url.search + url.hash;
}

/**
 * Applies {@link rewriteUrlFields} to a response: reads a JSON body (bounded), and answers a new
 * response with the rewritten body, or the untouched response when there is nothing to do.
 */
export async function rewriteResponseUrls(
	response: Response,
	fields: readonly string[],
	guardBase: string,
	originBase: string,
	idleMs: number,
): Promise<Response> {
	const type = response.headers.get("content-type") ?? "";
	if (fields.length === 0 || !type.includes("json") || response.body === null) return response;
	const declared = declaredLength(response.headers);
	if (typeof declared === "number" && declared > REWRITE_READ_LIMIT) return response;
	const [probe, original] = response.body.tee();
	// A stall throws (the caller answers for a stalled origin); the untouched branch is let go too.
	const text = await readBoundedText(probe, REWRITE_READ_LIMIT, idleMs).catch(async (error: unknown) => {
		await original.cancel().catch(() => undefined);
		throw error;
	});
	const rewritten = text === undefined ? undefined : rewriteUrlFields(text, fields, guardBase, originBase);
	if (rewritten === undefined) return new Response(original, response);
	await original.cancel().catch(() => undefined);
	const headers = new Headers(response.headers);
	headers.delete("content-length");
	headers.delete("content-encoding");
	return new Response(rewritten, { status: response.status, statusText: response.statusText, headers });
}
