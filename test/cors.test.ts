import { describe, expect, it } from "vitest";
import { ConfigError } from "../src/config/config-error";
import { CORS_DEFAULTS, type CorsConfig, parseCorsConfig } from "../src/cors/cors-config";
import {
	applyCors,
	browserRefusal,
	browserWithoutOptIn,
	corsHeaders,
	EXPOSED_HEADERS,
	MISSING_OPT_IN_MESSAGE,
	ORIGIN_NOT_ALLOWED_MESSAGE,
	preflight,
} from "../src/cors/cors";

const PAGE = "http://localhost:5173";
const URL_ = "https://guard.example.com/v1/messages";
// What the official SDK's browser build asks for (dangerouslyAllowBrowser) in its preflight.
const SDK_HEADERS =
	"anthropic-dangerous-direct-browser-access,anthropic-version,content-type,x-api-key,x-stainless-arch,x-stainless-lang,x-stainless-os,x-stainless-package-version,x-stainless-retry-count,x-stainless-runtime,x-stainless-runtime-version,x-stainless-timeout";
const ONLY_PAGE: CorsConfig = parseCorsConfig({ allowed_origins: [PAGE], max_age_seconds: 120 });

function preflightRequest(origin: string | null, method = "POST", headers: string | null = SDK_HEADERS): Request {
	const init = new Headers({ "access-control-request-method": method });
	if (origin !== null) init.set("origin", origin);
	if (headers !== null) init.set("access-control-request-headers", headers);
	return new Request(URL_, { method: "OPTIONS", headers: init });
}

function browserPost(origin: string | null, optIn: string | null = "true"): Request {
	const headers = new Headers({ "content-type": "application/json", "x-api-key": "sk-test" });
	if (origin !== null) headers.set("origin", origin);
	if (optIn !== null) headers.set("anthropic-dangerous-direct-browser-access", optIn);
	return new Request(URL_, { method: "POST", headers, body: "{}" });
}

function problem(raw: unknown): ConfigError {
	try {
		parseCorsConfig(raw);
	} catch (error) {
		expect(error).toBeInstanceOf(ConfigError);
		return error as ConfigError;
	}
	throw new Error("the configuration was accepted");
}

describe("CORS config", () => {
	it("allows every origin with a 600 s preflight cache when [vars.CORS] is absent, as the API", () => {
		expect(parseCorsConfig(undefined)).toBe(CORS_DEFAULTS);
		expect(parseCorsConfig("")).toBe(CORS_DEFAULTS);
		expect(CORS_DEFAULTS).toEqual({ allowedOrigins: "*", maxAgeSeconds: 600 });
	});

	it("reads exact origins and the cache time, from a table or a JSON string", () => {
		const config = parseCorsConfig(JSON.stringify({ allowed_origins: [PAGE, "https://app.example.com"], max_age_seconds: 0 }));
		expect(config.allowedOrigins).toEqual(new Set([PAGE, "https://app.example.com"]));
		expect(config.maxAgeSeconds).toBe(0);
		expect(parseCorsConfig({ allowed_origins: ["*"] }).allowedOrigins).toBe("*");
		expect(parseCorsConfig({ allowed_origins: [] }).allowedOrigins).toEqual(new Set());
	});

	it.each([
		[{ allowed_origin: ["*"] }, "CORS.allowed_origin", "unknown field"],
		[{ allowed_origins: "*" }, "CORS.allowed_origins", "must be a list of origins"],
		[{ allowed_origins: ["*", PAGE] }, "CORS.allowed_origins", "cannot be combined"],
		[{ allowed_origins: [PAGE, "https://app.example.com/"] }, "CORS.allowed_origins[1]", 'did you mean "https://app.example.com"'],
		[{ allowed_origins: ["https://App.example.com"] }, "CORS.allowed_origins[0]", 'did you mean "https://app.example.com"'],
		[{ allowed_origins: ["https://app.example.com:443"] }, "CORS.allowed_origins[0]", 'did you mean "https://app.example.com"'],
		[{ allowed_origins: ["app.example.com"] }, "CORS.allowed_origins[0]", "scheme://host[:port]"],
		[{ allowed_origins: ["null"] }, "CORS.allowed_origins[0]", "http(s) origin"],
		[{ allowed_origins: [PAGE, PAGE] }, "CORS.allowed_origins[1]", "listed twice"],
		[{ allowed_origins: [42] }, "CORS.allowed_origins[0]", "must be an origin string"],
		[{ max_age_seconds: -1 }, "CORS.max_age_seconds", "from 0 to 86400"],
		[{ max_age_seconds: 1.5 }, "CORS.max_age_seconds", "from 0 to 86400"],
		[["*"], "CORS", "must be a table"],
		["{not json", "CORS", "not valid JSON"],
	])("refuses %j, naming %s", (raw, field, words) => {
		const error = problem(raw);
		expect(error.field).toBe(field);
		expect(error.message).toContain(words);
	});
});

describe("CORS preflight", () => {
	it("answers 204 itself with the allowed origin, the route's methods, the requested headers echoed and the cache time", () => {
		const response = preflight(preflightRequest(PAGE), CORS_DEFAULTS, ["POST"]);
		expect(response?.status).toBe(204);
		expect(response?.headers.get("access-control-allow-origin")).toBe("*");
		expect(response?.headers.get("access-control-allow-methods")).toBe("POST");
		expect(response?.headers.get("access-control-allow-headers")).toBe(SDK_HEADERS);
		expect(response?.headers.get("access-control-max-age")).toBe("600");
		expect(response?.headers.get("vary")).toContain("origin");
		expect(response?.headers.get("access-control-allow-credentials")).toBeNull();
	});

	it("names a listed origin itself rather than *, with the configured cache time", () => {
		const response = preflight(preflightRequest(PAGE, "GET", "x-api-key"), ONLY_PAGE, ["GET", "HEAD"]);
		expect(response?.headers.get("access-control-allow-origin")).toBe(PAGE);
		expect(response?.headers.get("access-control-allow-methods")).toBe("GET, HEAD");
		expect(response?.headers.get("access-control-max-age")).toBe("120");
	});

	it("gives an origin that is not allowed a 204 without any allow header, so the browser blocks the request", () => {
		const response = preflight(preflightRequest("https://evil.example"), ONLY_PAGE, ["POST"]);
		expect(response?.status).toBe(204);
		const names = [...(response?.headers.keys() ?? [])];
		expect(names.filter((name) => name.startsWith("access-control-"))).toEqual([]);
		expect(response?.headers.get("vary")).toContain("origin");
	});

	it("gives a path with no routed method no allow header", () => {
		const response = preflight(preflightRequest(PAGE), CORS_DEFAULTS, []);
		expect(response?.status).toBe(204);
		expect(response?.headers.get("access-control-allow-origin")).toBeNull();
	});

	it("does not echo a requested header list that is not a list of header names", () => {
		const response = preflight(preflightRequest(PAGE, "POST", "x-api-key, bad header;"), CORS_DEFAULTS, ["POST"]);
		expect(response?.headers.get("access-control-allow-origin")).toBe("*");
		expect(response?.headers.get("access-control-allow-headers")).toBeNull();
	});

	it("leaves every request that is not a preflight to the pipeline", () => {
		expect(preflight(preflightRequest(null), CORS_DEFAULTS, ["POST"])).toBeUndefined();
		expect(preflight(new Request(URL_, { method: "OPTIONS", headers: { origin: PAGE } }), CORS_DEFAULTS, ["POST"])).toBeUndefined();
		expect(preflight(browserPost(PAGE), CORS_DEFAULTS, ["POST"])).toBeUndefined();
	});
});

describe("CORS on actual requests", () => {
	it("lets an opted-in page read the answer, the request ID, retry hints and rate-limit headers included", () => {
		const headers = corsHeaders(browserPost(PAGE), CORS_DEFAULTS);
		expect(headers?.["access-control-allow-origin"]).toBe("*");
		expect(headers?.vary).toBe("origin");
		const exposed = headers?.["access-control-expose-headers"]?.split(", ") ?? [];
		for (const name of ["request-id", "retry-after", "retry-after-ms", "x-should-retry"]) expect(exposed).toContain(name);
		for (const what of ["requests", "input-tokens", "output-tokens", "tokens"]) {
			for (const part of ["limit", "remaining", "reset"]) expect(exposed).toContain(`anthropic-ratelimit-${what}-${part}`);
		}
		expect(exposed).toEqual([...EXPOSED_HEADERS]);
	});

	it("gives no CORS header to a request without Origin or from an origin that is not allowed", () => {
		expect(corsHeaders(browserPost(null), CORS_DEFAULTS)).toBeUndefined();
		expect(corsHeaders(browserPost("https://evil.example"), ONLY_PAGE)).toBeUndefined();
		expect(corsHeaders(browserPost(PAGE), ONLY_PAGE)?.["access-control-allow-origin"]).toBe(PAGE);
	});
});

describe("browser requests without the opt-in header", () => {
	it("counts a request with Origin and no opt-in (or not 'true') as a browser request without it", () => {
		expect(browserWithoutOptIn(browserPost(PAGE, null))).toBe(true);
		expect(browserWithoutOptIn(browserPost(PAGE, "false"))).toBe(true);
		expect(browserWithoutOptIn(browserPost(PAGE, "true"))).toBe(false);
		expect(browserWithoutOptIn(browserPost(PAGE, " TRUE "))).toBe(false);
	});

	it("does not count sec-fetch-mode: cors without Origin, which Node's fetch sends on every request", () => {
		const server = new Request(URL_, { method: "POST", headers: { "sec-fetch-mode": "cors", "x-api-key": "sk-test" }, body: "{}" });
		expect(browserWithoutOptIn(server)).toBe(false);
		expect(browserRefusal(server, CORS_DEFAULTS)).toBeUndefined();
	});

	it("refuses it with the API's message and CORS headers, so the page can read why", () => {
		const refusal = browserRefusal(browserPost(PAGE, null), CORS_DEFAULTS);
		expect(refusal?.message).toBe(MISSING_OPT_IN_MESSAGE);
		expect(refusal?.message).toBe("CORS requests must set 'anthropic-dangerous-direct-browser-access' header");
		expect(refusal?.headers["access-control-allow-origin"]).toBe("*");
		expect(refusal?.headers["access-control-expose-headers"]).toContain("request-id");
	});

	it("refuses an origin that is not allowed, opted in or not, with no CORS header", () => {
		for (const optIn of ["true", null]) {
			const refusal = browserRefusal(browserPost("https://evil.example", optIn), ONLY_PAGE);
			expect(refusal?.message).toBe(ORIGIN_NOT_ALLOWED_MESSAGE);
			expect(Object.keys(refusal?.headers ?? {}).filter((name) => name.startsWith("access-control-"))).toEqual([]);
		}
		expect(browserRefusal(browserPost(PAGE), parseCorsConfig({ allowed_origins: [] }))?.message).toBe(ORIGIN_NOT_ALLOWED_MESSAGE);
	});

	it("lets an opted-in page from an allowed origin, every request without Origin, and preflights go on", () => {
		expect(browserRefusal(browserPost(PAGE), CORS_DEFAULTS)).toBeUndefined();
		expect(browserRefusal(preflightRequest(PAGE), CORS_DEFAULTS)).toBeUndefined();
		expect(browserRefusal(preflightRequest("https://evil.example"), ONLY_PAGE)).toBeUndefined();
		expect(browserRefusal(browserPost(PAGE), ONLY_PAGE)).toBeUndefined();
		expect(browserRefusal(browserPost(null, null), ONLY_PAGE)).toBeUndefined();
	});
});

describe("applying CORS to an answer", () => {
	it("adds the headers to an error answer too, keeping its status, body and other headers, and merging vary", async () => {
		const error = new Response('{"type":"error"}', { status: 429, headers: { "retry-after": "3", vary: "accept-encoding" } });
		const answer = applyCors(error, browserPost(PAGE), CORS_DEFAULTS);
		expect(answer.status).toBe(429);
		expect(await answer.text()).toBe('{"type":"error"}');
		expect(answer.headers.get("retry-after")).toBe("3");
		expect(answer.headers.get("access-control-allow-origin")).toBe("*");
		expect(answer.headers.get("vary")).toBe("accept-encoding, origin");
	});

	it("replaces the origin's own access-control headers with the guard's decision", () => {
		const fromOrigin = new Response("{}", {
			headers: { "access-control-allow-origin": "https://evil.example", "access-control-allow-credentials": "true", "content-type": "application/json" },
		});
		const allowed = applyCors(fromOrigin.clone(), browserPost(PAGE), ONLY_PAGE);
		expect(allowed.headers.get("access-control-allow-origin")).toBe(PAGE);
		expect(allowed.headers.get("access-control-allow-credentials")).toBeNull();
		const stranger = applyCors(fromOrigin.clone(), browserPost("https://evil.example"), ONLY_PAGE);
		expect(stranger.headers.get("access-control-allow-origin")).toBeNull();
		expect(stranger.headers.get("content-type")).toBe("application/json");
		const server = applyCors(fromOrigin.clone(), browserPost(null, null), ONLY_PAGE);
		expect(server.headers.get("access-control-allow-origin")).toBeNull();
	});

	it("returns an answer with nothing to change as it is, and the guard's preflight answer untouched", () => {
		const plain = new Response("{}");
		expect(applyCors(plain, browserPost(null, null), CORS_DEFAULTS)).toBe(plain);
		const request = preflightRequest(PAGE);
		const answer = preflight(request, CORS_DEFAULTS, ["POST"]);
		if (answer === undefined) throw new Error("no preflight answer");
		expect(applyCors(answer, request, CORS_DEFAULTS)).toBe(answer);
	});
});
