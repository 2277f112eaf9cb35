import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config/config-error";
import { parseGuardConfig } from "../../src/config/guard-config";
import { parseRouteTable } from "../../src/config/route-table";

const good = { methods: ["POST"], path: "/v1/messages", max_body_bytes: 10, group: "messages" };

function problem(raw: unknown): string {
	try {
		parseRouteTable(raw);
	} catch (error) {
		expect(error).toBeInstanceOf(ConfigError);
		return (error as Error).message;
	}
	throw new Error("the table was accepted");
}

describe("route table validation", () => {
	it("accepts the table as a JSON string too", () => {
		expect(parseRouteTable(JSON.stringify([good]))[0]?.maxBodyBytes).toBe(10);
	});

	it.each([
		[undefined, "ROUTES: the route table is missing"],
		["[", "ROUTES: is a string but not valid JSON"],
		[[], "ROUTES: must be a non-empty array"],
		[[42], "ROUTES[0]: must be a table"],
		[[good, { ...good, path: "/v1/files", max_body_bytes: "32MB" }], 'ROUTES[1].max_body_bytes: must be a whole number of bytes (0 or more), got "32MB"'],
		[[{ ...good, max_body_bytes: -1 }], "ROUTES[0].max_body_bytes: must be a whole number"],
		[[{ ...good, max_body_bytes: 1.5 }], "ROUTES[0].max_body_bytes: must be a whole number"],
		[[{ ...good, max_body_byte: 5 }], "ROUTES[0].max_body_byte: unknown field"],
		[[{ ...good, methods: [] }], "ROUTES[0].methods: must be a non-empty array"],
		[[{ ...good, methods: ["post"] }], 'ROUTES[0].methods: "post" is not one of'],
		[[{ ...good, methods: ["GET", "GET"] }], "ROUTES[0].methods: GET is listed twice"],
		[[{ ...good, path: "v1/messages" }], 'ROUTES[0].path: must be a path starting with "/"'],
		[[{ ...good, path: "/v1/messages?x=1" }], 'ROUTES[0].path: segment "messages?x=1"'],
		[[{ ...good, path: "/v1//messages" }], 'ROUTES[0].path: segment ""'],
		[[{ ...good, origin: "ftp://x" }], "ROUTES[0].origin: must be an absolute http(s) URL"],
		[[{ ...good, origin: "https://x/?q=1" }], "ROUTES[0].origin: must be an absolute http(s) URL"],
		[[{ ...good, group: "Messages" }], "ROUTES[0].group: must be a lower-case name"],
		[[{ ...good, rewrite_urls: "results_url" }], "ROUTES[0].rewrite_urls: must be an array of JSON field names"],
		[[good, { ...good, name: "other" }], "ROUTES[1].methods: POST /v1/messages is already routed by ROUTES[0]"],
		[[{ ...good, name: "a" }, { ...good, path: "/v1/x", name: "a" }], 'ROUTES[1].name: "a" is already used by ROUTES[0]'],
	])("rejects %j with a message naming the field", (raw, expected) => {
		expect(problem(raw)).toContain(expected);
	});

	it("requires an origin for every route when no ORIGIN binding is bound", () => {
		expect(() => parseGuardConfig({ ROUTES: [good], ORIGIN_URL: "", hasOriginBinding: false, hasKeysBinding: true })).toThrow(
			"ORIGIN_URL: ROUTES[0] has no origin of its own, so set ORIGIN_URL or bind a service named ORIGIN",
		);
		expect(() => parseGuardConfig({ ROUTES: [good], ORIGIN_URL: "not a url", hasOriginBinding: false, hasKeysBinding: true })).toThrow(
			'ORIGIN_URL: must be an absolute http(s) URL without credentials, query or fragment, got "not a url"',
		);
		expect(parseGuardConfig({ ROUTES: [good], ORIGIN_URL: "https://api.example.com/", hasOriginBinding: false, hasKeysBinding: true }).originUrl).toBe(
			"https://api.example.com",
		);
	});
});

describe("a route's fields", () => {
	const only = (extra: Record<string, unknown>) => parseRouteTable([{ ...good, ...extra }])[0];

	it("take the documented defaults when absent", () => {
		expect(parseRouteTable([good])[0]).toStrictEqual({
			name: "POST /v1/messages",
			methods: ["POST"],
			path: "/v1/messages",
			maxBodyBytes: 10,
			origin: undefined,
			group: "messages",
			rewriteUrls: [],
			auth: true,
			requireVersion: true,
			contentType: undefined,
			forwardApiKey: false,
			meterTokens: false,
			meterBatches: false,
			settleBatchResults: false,
			limiterFailure: "open",
			responseTimeoutMs: 600_000,
			streamIdleTimeoutMs: 300_000,
			clientIdleTimeoutMs: 30_000,
			pingIntervalMs: 10_000,
			refuseLongNonStreaming: false,
			bodyIdleTimeoutMs: 30_000,
			contentEncodings: [],
			minBodyRate: 240,
			bodyRateGraceMs: 5000,
			origins: undefined,
			retry: undefined,
		});
	});

	it("are read as written, seconds as milliseconds", () => {
		const route = only({
			name: "messages.create",
			methods: ["POST", "PUT"],
			path: "/v1/files/:file_id/content",
			max_body_bytes: 0,
			origin: "https://files.example.com/base/",
			rewrite_urls: ["results_url", "_next"],
			require_anthropic_version: false,
			content_type: "application/json",
			forward_api_key: true,
			meter_batches: true,
			settle_batch_results: true,
			limiter_failure: "local",
			response_timeout_seconds: 0.5,
			stream_idle_timeout_seconds: 86_400,
			client_idle_timeout_seconds: 0.001,
			ping_interval_seconds: 0,
			refuse_long_non_streaming: true,
			body_idle_timeout_seconds: 2,
			content_encodings: ["gzip", "deflate"],
			min_body_rate_bytes_per_second: 0,
			body_rate_grace_seconds: 0,
		});
		expect(route).toStrictEqual({
			name: "messages.create",
			methods: ["POST", "PUT"],
			path: "/v1/files/:file_id/content",
			maxBodyBytes: 0,
			origin: "https://files.example.com/base",
			group: "messages",
			rewriteUrls: ["results_url", "_next"],
			auth: true,
			requireVersion: false,
			contentType: "application/json",
			forwardApiKey: true,
			meterTokens: false,
			meterBatches: true,
			settleBatchResults: true,
			limiterFailure: "local",
			responseTimeoutMs: 500,
			streamIdleTimeoutMs: 86_400_000,
			clientIdleTimeoutMs: 1,
			pingIntervalMs: 0,
			refuseLongNonStreaming: true,
			bodyIdleTimeoutMs: 2000,
			contentEncodings: ["gzip", "deflate"],
			minBodyRate: 0,
			bodyRateGraceMs: 0,
			origins: undefined,
			retry: undefined,
		});
	});

	it("need an anthropic-version only under /v1/ unless told, and fail closed when they spend", () => {
		expect(only({ path: "/health", auth: false, group: undefined })?.requireVersion).toBe(false);
		expect(only({ path: "/v1" })?.requireVersion).toBe(false);
		expect(only({ path: "/", require_anthropic_version: true })?.requireVersion).toBe(true);
		expect(only({ meter_tokens: true })?.limiterFailure).toBe("closed");
		expect(only({ meter_batches: true })?.limiterFailure).toBe("closed");
		expect(only({ meter_tokens: true, limiter_failure: "open" })?.limiterFailure).toBe("open");
		expect(only({ auth: false, group: undefined })).toMatchObject({ auth: false, group: undefined });
	});

	it.each([
		[{ group: undefined }, "ROUTES[0].group: is required when auth is on: it names the scope an API key needs for the route"],
		[{ meter_tokens: true, meter_batches: true }, "ROUTES[0].meter_batches: cannot be set with meter_tokens"],
		[{ auth: false, meter_tokens: true }, "ROUTES[0].meter_tokens: needs auth: usage is charged to the organisation of the request's API key"],
		[{ auth: false, meter_batches: true }, "ROUTES[0].meter_batches: needs auth"],
		[{ auth: false, settle_batch_results: true }, "ROUTES[0].settle_batch_results: needs auth"],
		[{ auth: "yes" }, 'ROUTES[0].auth: must be true or false, got "yes"'],
		[{ name: " " }, 'ROUTES[0].name: must be a non-empty string, got " "'],
		[{ name: 5 }, "ROUTES[0].name: must be a non-empty string, got 5"],
		[{ group: 5 }, 'ROUTES[0].group: must be a lower-case name such as "messages", got 5'],
		[{ group: "1st" }, "ROUTES[0].group: must be a lower-case name"],
		[{ limiter_failure: "sometimes" }, 'ROUTES[0].limiter_failure: must be one of open, closed, local, got "sometimes"'],
		[{ content_type: "json" }, 'ROUTES[0].content_type: must be a media type such as "application/json", got "json"'],
		[{ content_type: "Application/JSON" }, "ROUTES[0].content_type: must be a media type"],
		[{ content_type: "application/json; charset=utf-8" }, "ROUTES[0].content_type: must be a media type"],
		[{ content_encodings: ["br"] }, 'ROUTES[0].content_encodings: must be an array of request encodings the guard decodes (gzip, deflate), got an array'],
		[{ content_encodings: "gzip" }, "ROUTES[0].content_encodings: must be an array of request encodings"],
		[{ rewrite_urls: ["results-url"] }, 'ROUTES[0].rewrite_urls: must be an array of JSON field names such as ["results_url"]'],
		[{ rewrite_urls: ["1st"] }, "ROUTES[0].rewrite_urls: must be an array of JSON field names"],
		[{ response_timeout_seconds: 0 }, "ROUTES[0].response_timeout_seconds: must be a number of seconds from more than 0 to 86400, got 0"],
		[{ response_timeout_seconds: 86_400.5 }, "ROUTES[0].response_timeout_seconds: must be a number of seconds from more than 0 to 86400"],
		[{ stream_idle_timeout_seconds: "30" }, "ROUTES[0].stream_idle_timeout_seconds: must be a number of seconds"],
		[{ client_idle_timeout_seconds: Number.POSITIVE_INFINITY }, "ROUTES[0].client_idle_timeout_seconds: must be a number of seconds"],
		[{ body_idle_timeout_seconds: 0.0009 }, "ROUTES[0].body_idle_timeout_seconds: must be a number of seconds from more than 0"],
		[{ ping_interval_seconds: -1 }, "ROUTES[0].ping_interval_seconds: must be a number of seconds from 0 (off) to 86400, got -1"],
		[{ body_rate_grace_seconds: -0.5 }, "ROUTES[0].body_rate_grace_seconds: must be a number of seconds from 0 (off)"],
		[{ min_body_rate_bytes_per_second: 1.5 }, "ROUTES[0].min_body_rate_bytes_per_second: must be a whole number of bytes (0 or more), got 1.5"],
		[{ refuse_long_non_streaming: 1 }, "ROUTES[0].refuse_long_non_streaming: must be true or false, got 1"],
		[{ forward_api_key: "false" }, "ROUTES[0].forward_api_key: must be true or false"],
		[{ origin: "https://user:secret@api.example.com" }, "ROUTES[0].origin: must not carry credentials (user:password@); set the ORIGIN_TOKEN secret"],
		[{ origin: "https://api.example.com/#top" }, "ROUTES[0].origin: must be an absolute http(s) URL without credentials, query or fragment"],
		[{ origin: 5 }, "ROUTES[0].origin: must be an absolute http(s) URL without credentials, query or fragment, got 5"],
	])("refuses %j, naming the field", (extra, message) => {
		expect(problem([{ ...good, ...extra }])).toContain(message);
	});

	it("never repeats a URL's credentials in its message", () => {
		const message = problem([{ ...good, origin: "https://user:secret@" }]);
		expect(message).toContain("a URL with credentials (user:password@), not shown");
		expect(message).not.toContain("secret");
	});

	it("lists every field a route may have when one is unknown", () => {
		expect(problem([{ ...good, timeout: 5 }])).toBe(
			"ROUTES[0].timeout: unknown field; expected one of name, methods, path, max_body_bytes, origin, group, rewrite_urls, auth, require_anthropic_version, content_type, forward_api_key, meter_tokens, meter_batches, settle_batch_results, limiter_failure, response_timeout_seconds, stream_idle_timeout_seconds, client_idle_timeout_seconds, ping_interval_seconds, refuse_long_non_streaming, body_idle_timeout_seconds, content_encodings, min_body_rate_bytes_per_second, body_rate_grace_seconds, origins, max_attempts, replay_max_bytes, connect_timeout_seconds, retry_statuses",
		);
	});

	it("accepts the same path under other methods, and the root path", () => {
		const routes = parseRouteTable([good, { ...good, methods: ["GET", "DELETE"] }, { ...good, path: "/", name: "root" }]);
		expect(routes.map((route) => route.name)).toEqual(["POST /v1/messages", "GET|DELETE /v1/messages", "root"]);
	});
});

describe("a route's fields: what only a value of the right type passes", () => {
	it("accepts each of the seven methods, and plain http and https origins", () => {
		const methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
		expect(parseRouteTable([{ ...good, methods }])[0]?.methods).toEqual(methods);
		expect(parseRouteTable([{ ...good, origin: "http://127.0.0.1:8787" }])[0]?.origin).toBe("http://127.0.0.1:8787");
	});

	it.each([
		[null, "ROUTES: the route table is missing"],
		[[null], "ROUTES[0]: must be a table with methods, path and max_body_bytes, got null"],
		[[{ ...good, methods: ["FETCH"] }], '"FETCH" is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS (upper case)'],
		[[{ ...good, path: 5 }], 'ROUTES[0].path: must be a path starting with "/"'],
		[[{ ...good, group: ["messages"] }], "ROUTES[0].group: must be a lower-case name"],
		[[{ ...good, group: "messages!" }], "ROUTES[0].group: must be a lower-case name"],
		[[{ ...good, content_type: ["application/json"] }], "ROUTES[0].content_type: must be a media type"],
		[[{ ...good, content_type: " application/json" }], "ROUTES[0].content_type: must be a media type"],
		[[{ ...good, content_encodings: ["gzip", "br"] }], "ROUTES[0].content_encodings: must be an array of request encodings"],
		[[{ ...good, rewrite_urls: ["results_url", "bad-name"] }], "ROUTES[0].rewrite_urls: must be an array of JSON field names"],
		[[{ ...good, rewrite_urls: [["results_url"]] }], "ROUTES[0].rewrite_urls: must be an array of JSON field names"],
		[[{ ...good, meter_tokens: "yes" }], "ROUTES[0].meter_tokens: must be true or false"],
		[[{ ...good, meter_batches: "yes" }], "ROUTES[0].meter_batches: must be true or false"],
		[[{ ...good, settle_batch_results: "yes" }], "ROUTES[0].settle_batch_results: must be true or false"],
		[[{ ...good, require_anthropic_version: "yes" }], "ROUTES[0].require_anthropic_version: must be true or false"],
		[[{ ...good, origin: "https://user@api.example.com" }], "ROUTES[0].origin: must not carry credentials"],
		[[{ ...good, origin: "https://:secret@api.example.com" }], "ROUTES[0].origin: must not carry credentials"],
		[[{ ...good, origin: "https://api.example.com/a//b@c" }], "ROUTES[0].origin: must be an absolute http(s) URL without credentials, query or fragment, got a URL with credentials"],
	])("refuses %j, naming the field", (raw, expected) => {
		expect(problem(raw)).toContain(expected);
	});
});
