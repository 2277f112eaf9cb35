import { mergeVary } from "../lib/merge-vary";
import type { CorsConfig } from "./cors-config";

/** The request header a page sends to say it knows its API key is exposed (the SDK's `dangerouslyAllowBrowser`). */
export const OPT_IN_HEADER = "anthropic-dangerous-direct-browser-access";

/** The API's answer to a browser request without {@link OPT_IN_HEADER}, word for word. */
export const MISSING_OPT_IN_MESSAGE = "CORS requests must set 'anthropic-dangerous-direct-browser-access' header";

/** The guard's answer to a browser request from an origin `[vars.CORS]` does not allow. */
export const ORIGIN_NOT_ALLOWED_MESSAGE = "CORS requests from this origin are not allowed by this API's settings.";

const RATE_LIMIT_HEADERS = ["requests", "input-tokens", "output-tokens", "tokens"].flatMap((what) =>
	["limit", "remaining", "reset"].map((part) => `anthropic-ratelimit-${what}-${part}`),
);

/**
 * The response headers a page may read beyond the CORS-safelisted ones: what the SDKs read to
 * report and retry (request ID, retry hints, rate-limit state). Listed by name rather than `*`,
 * which browsers honour only for requests without credentials.
 */
export const EXPOSED_HEADERS: readonly string[] = Object.freeze([
	"request-id",
	"x-origin-request-id",
	"retry-after",
	"retry-after-ms",
	"x-should-retry",
	"x-guard-ratelimit",
	...RATE_LIMIT_HEADERS,
]);

// Longer than any real list of header names; a longer one is not echoed (the browser then blocks).
const MAX_REQUEST_HEADERS_CHARS = 4096;
const HEADER_NAME_LIST = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:[ \t]*,[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*$/;

/** Whether the request is a CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`. */
export function isPreflight(request: Request): boolean {
	return request.method === "OPTIONS" && request.headers.has("origin") && request.headers.has("access-control-request-method");
}

/**
 * Answers a CORS preflight itself (never forwarded, charged or shed); undefined for any other
 * request. Always `204`: for an allowed origin with the methods `allowedMethods` (those routed
 * for the path; none for an unknown path), the requested headers echoed, and the cache time;
 * for any other origin no `access-control-allow-*` header, so the browser blocks the request.
 */
export function preflight(request: Request, config: CorsConfig, allowedMethods: readonly string[]): Response | undefined {
	if (!isPreflight(request)) return undefined;
	const headers = new Headers({ vary: "origin, access-control-request-method, access-control-request-headers" });
	const allowOrigin = allowOriginFor(request.headers.get("origin"), config);
	if (allowOrigin !== undefined && allowedMethods.length > 0) {
		headers.set("access-control-allow-origin", allowOrigin);
		headers.set("access-control-allow-methods", allowedMethods.join(", "));
		const requested = request.headers.get("access-control-request-headers")?.trim() ?? "";
		if (requested !== "" && requested.length <= MAX_REQUEST_HEADERS_CHARS && HEADER_NAME_LIST.test(requested)) {
			headers.set("access-control-allow-headers", requested);
		}
		headers.set("access-control-max-age", String(config.maxAgeSeconds));
	}
	return new Response(null, { status: 204, headers });
}

/** Whether the request carries {@link OPT_IN_HEADER} with the value `true`. */
export function hasOptIn(request: Request): boolean {
	return request.headers.get(OPT_IN_HEADER)?.trim().toLowerCase() === "true";
}

/**
 * Whether the request comes from a browser page (it has an `Origin` header) without the opt-in
 * header. Only `Origin` counts: Node's `fetch` sends `sec-fetch-mode: cors` on every request, so
 * that header would refuse server-side SDK clients too.
 */
export function browserWithoutOptIn(request: Request): boolean {
	return request.headers.has("origin") && !hasOptIn(request);
}

/**
 * The CORS headers for the answer to an actual (non-preflight) request, errors included: when its
 * `Origin` is allowed, the allowed origin, {@link EXPOSED_HEADERS} and `vary: origin`; otherwise
 * undefined (no CORS header, so no page can read the answer). A request without the opt-in header
 * is refused first ({@link browserRefusal}), so its page can read that `401` and nothing else.
 */
export function corsHeaders(request: Request, config: CorsConfig): Record<string, string> | undefined {
	const allowOrigin = allowOriginFor(request.headers.get("origin"), config);
	if (allowOrigin === undefined) return undefined;
	return {
		"access-control-allow-origin": allowOrigin,
		"access-control-expose-headers": EXPOSED_HEADERS.join(", "),
		vary: "origin",
	};
}

/** Why the guard refuses a browser request before anything else, and the headers its `401` carries. */
export interface BrowserRefusal {
	readonly message: string;
	readonly headers: Record<string, string>;
}

/**
 * The `401 authentication_error` a browser request gets, or undefined when it may go on (not a
 * browser request, a preflight, or an allowed origin with the opt-in header). Without the opt-in header the
 * message is the API's, and the answer carries the CORS headers so that the page can read why;
 * from an origin `[vars.CORS]` does not allow, it carries none.
 */
export function browserRefusal(request: Request, config: CorsConfig): BrowserRefusal | undefined {
	if (!request.headers.has("origin") || isPreflight(request)) return undefined;
	const readable = corsHeaders(request, config);
	if (readable === undefined) return { message: ORIGIN_NOT_ALLOWED_MESSAGE, headers: { vary: "origin" } };
	if (!hasOptIn(request)) return { message: MISSING_OPT_IN_MESSAGE, headers: readable };
	return undefined;
}

/**
 * The answer to `request` with the guard's CORS decision applied, for the pipeline's last stage:
 * any `access-control-*` header of the origin removed (the guard's configuration alone decides
 * which pages may read), then {@link corsHeaders} set and `origin` added to `vary`. The guard's
 * own preflight answer passes unchanged, and so does any answer with nothing to change.
 */
export function applyCors(response: Response, request: Request, config: CorsConfig): Response {
	if (isPreflight(request)) return response;
	const headers = corsHeaders(request, config);
	const foreign = [...response.headers.keys()].filter((name) => name.startsWith("access-control-"));
	if (headers === undefined && foreign.length === 0) return response;
	const copy = new Response(response.body, response);
	for (const name of foreign) copy.headers.delete(name);
	for (const [name, value] of Object.entries(headers ?? {})) {
		if (name === "vary") copy.headers.set("vary", mergeVary(copy.headers.get("vary"), value));
		else copy.headers.set(name, value);
	}
	return copy;
}

/** `*` when every origin is allowed (as the API answers), the origin itself when listed, else undefined. */
function allowOriginFor(origin: string | null, config: CorsConfig): string | undefined {
	if (origin === null) return undefined;
	if (config.allowedOrigins === "*") return "*";
	return config.allowedOrigins.has(origin) ? origin : undefined;
}
