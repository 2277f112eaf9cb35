import { configValue, describe } from "./config-json";

export { describe };
import { ConfigError } from "./config-error";
import { type OriginSpec, ORIGIN_LIST_FIELDS, parseOriginList, type RetryPolicy } from "./origin-list";
import { parseOriginUrl } from "./origin-url";

export { parseOriginUrl };

/** One validated entry of the route table. */
export interface Route {
	/** A stable name for logs and metrics, e.g. `messages.create`. */
	readonly name: string;
	readonly methods: readonly string[];
	/** A path pattern: literal segments and `:param` segments, e.g. `/v1/files/:id`. */
	readonly path: string;
	/** The largest request body, in bytes, that reaches the origin. */
	readonly maxBodyBytes: number;
	/** The route's own origin base URL; absent, the guard's default origin serves it. */
	readonly origin: string | undefined;
	/** The route's list of origins (README "Origins"); absent, {@link Route.origin} or the default origin serves it. */
	readonly origins: readonly OriginSpec[] | undefined;
	/** How a route with {@link Route.origins} retries before the first byte; absent without a list. */
	readonly retry: RetryPolicy | undefined;
	/** The route group (`messages`, `batches`, `files`, `models`): what an API key's scope names. */
	readonly group: string | undefined;
	/** JSON fields of the origin's answers holding absolute URLs to point back at the guard. */
	readonly rewriteUrls: readonly string[];
	/** Whether the route needs an API key with the route's group as a scope (default true). */
	readonly auth: boolean;
	/** Whether the route needs an `anthropic-version` header (default: every `/v1/` path). */
	readonly requireVersion: boolean;
	/** The media type a body must declare, e.g. `application/json`; absent, any. */
	readonly contentType: string | undefined;
	/** Whether the origin receives the client's API key (default false: it never does). */
	readonly forwardApiKey: boolean;
	/** Whether requests are Messages whose usage is claimed and settled (input, `max_tokens`, money). */
	readonly meterTokens: boolean;
	/** Whether requests create Message Batches whose requests' usage is claimed at the batch price. */
	readonly meterBatches: boolean;
	/** Whether answers are a batch's results, whose lines' usage settles the batch's claim. */
	readonly settleBatchResults: boolean;
	/** What happens when the usage object cannot answer: admit, refuse with 529, or a local limit. */
	readonly limiterFailure: "open" | "closed" | "local";
	/** The longest wait for the origin's response headers, in ms (`504 timeout_error` past it). */
	readonly responseTimeoutMs: number;
	/** The longest silence within an origin's event stream, in ms (an SSE error event past it). */
	readonly streamIdleTimeoutMs: number;
	/** The longest a response body may wait on a client that takes none of it, in ms (cut off past it). */
	readonly clientIdleTimeoutMs: number;
	/** A keep-alive ping goes to the client after this much silence in an event stream, in ms; 0: never. */
	readonly pingIntervalMs: number;
	/** Whether a non-streaming request expected to take over 10 minutes is refused (default false: the API accepts them). */
	readonly refuseLongNonStreaming: boolean;
	/** The longest a request body may send nothing, in ms (`408` past it). */
	readonly bodyIdleTimeoutMs: number;
	/** Request `Content-Encoding`s the route accepts and decodes (default none: `415` for any). */
	readonly contentEncodings: readonly ContentEncoding[];
	/** The slowest a request body may arrive, in bytes a second after the grace (`408` below it); 0: no minimum. */
	readonly minBodyRate: number;
	/** How long a request body may arrive at any pace before {@link Route.minBodyRate} applies, in ms. */
	readonly bodyRateGraceMs: number;
}

/** The request body encodings the guard can decode (the runtime's `DecompressionStream` formats). */
export const CONTENT_ENCODINGS = ["gzip", "deflate"] as const;
export type ContentEncoding = (typeof CONTENT_ENCODINGS)[number];

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
const FIELDS = new Set([
	"name",
	"methods",
	"path",
	"max_body_bytes",
	"origin",
	"group",
	"rewrite_urls",
	"auth",
	"require_anthropic_version",
	"content_type",
	"forward_api_key",
	"meter_tokens",
	"meter_batches",
	"settle_batch_results",
	"limiter_failure",
	"response_timeout_seconds",
	"stream_idle_timeout_seconds",
	"client_idle_timeout_seconds",
	"ping_interval_seconds",
	"refuse_long_non_streaming",
	"body_idle_timeout_seconds",
	"content_encodings",
	"min_body_rate_bytes_per_second",
	"body_rate_grace_seconds",
	...ORIGIN_LIST_FIELDS,
]);
/** The SPEC's long-request bound: the SDKs refuse a non-streaming request expected to take longer. */
const TEN_MINUTES = 600;
const FAILURE_POLICIES = ["open", "closed", "local"] as const;
const MEDIA_TYPE = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/;
const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SEGMENT = /^(?::[A-Za-z_][A-Za-z0-9_]*|[A-Za-z0-9._~-]+)$/;
const GROUP = /^[a-z][a-z0-9_-]*$/;

/**
 * Parses and validates the route table (`[[vars.ROUTES]]` in `wrangler.toml`, or the same as a
 * JSON string). Throws a {@link ConfigError} naming the first bad field; never returns a partial
 * table.
 */
export function parseRouteTable(raw: unknown): Route[] {
	const table = configValue(raw, "ROUTES");
	if (table === undefined || table === null) {
		throw new ConfigError("ROUTES", "the route table is missing; add [[vars.ROUTES]] entries to wrangler.toml");
	}
	if (!Array.isArray(table) || table.length === 0) {
		throw new ConfigError("ROUTES", `must be a non-empty array of route tables, got ${describe(table)}`);
	}
	const routes = table.map((entry, index) => parseRoute(entry, `ROUTES[${index}]`));
	rejectDuplicates(routes);
	return routes;
}

function parseRoute(entry: unknown, at: string): Route {
	if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
		throw new ConfigError(at, `must be a table with methods, path and max_body_bytes, got ${describe(entry)}`);
	}
	const fields = entry as Record<string, unknown>;
	for (const key of Object.keys(fields)) {
		if (!FIELDS.has(key)) {
			throw new ConfigError(`${at}.${key}`, `unknown field; expected one of ${[...FIELDS].join(", ")}`);
		}
	}
	const methods = parseMethods(fields.methods, `${at}.methods`);
	const path = parsePath(fields.path, `${at}.path`);
	const auth = parseFlag(fields.auth, `${at}.auth`) ?? true;
	const group = parseGroup(fields.group, `${at}.group`);
	if (auth && group === undefined) {
		throw new ConfigError(`${at}.group`, "is required when auth is on: it names the scope an API key needs for the route");
	}
	const meterTokens = parseFlag(fields.meter_tokens, `${at}.meter_tokens`) ?? false;
	const meterBatches = parseFlag(fields.meter_batches, `${at}.meter_batches`) ?? false;
	const settleBatchResults = parseFlag(fields.settle_batch_results, `${at}.settle_batch_results`) ?? false;
	if (meterTokens && meterBatches) throw new ConfigError(`${at}.meter_batches`, "cannot be set with meter_tokens: a route's bodies are Messages or batches, not both");
	for (const [flag, on] of [
		["meter_tokens", meterTokens],
		["meter_batches", meterBatches],
		["settle_batch_results", settleBatchResults],
	] as const) {
		if (on && !auth) throw new ConfigError(`${at}.${flag}`, "needs auth: usage is charged to the organisation of the request's API key");
	}
	const list = parseOriginList(fields, at);
	return {
		name: parseName(fields.name, `${at}.name`) ?? `${methods.join("|")} ${path}`,
		methods,
		path,
		maxBodyBytes: parseByteCount(fields.max_body_bytes, `${at}.max_body_bytes`),
		origin: fields.origin === undefined ? undefined : parseOriginUrl(fields.origin, `${at}.origin`),
		origins: list?.origins,
		retry: list?.retry,
		group,
		rewriteUrls: parseFieldNames(fields.rewrite_urls, `${at}.rewrite_urls`),
		auth,
		requireVersion: parseFlag(fields.require_anthropic_version, `${at}.require_anthropic_version`) ?? path.startsWith("/v1/"),
		contentType: parseMediaType(fields.content_type, `${at}.content_type`),
		forwardApiKey: parseFlag(fields.forward_api_key, `${at}.forward_api_key`) ?? false,
		meterTokens,
		meterBatches,
		settleBatchResults,
		// A route that spends money or tokens fails closed unless told otherwise: admitting unclaimed requests while the usage object is away is the operator's choice to make.
		limiterFailure: parseFailurePolicy(fields.limiter_failure, `${at}.limiter_failure`, meterTokens || meterBatches ? "closed" : "open"),
		responseTimeoutMs: parseSeconds(fields.response_timeout_seconds, `${at}.response_timeout_seconds`, TEN_MINUTES, 1e-3) * 1000,
		streamIdleTimeoutMs: parseSeconds(fields.stream_idle_timeout_seconds, `${at}.stream_idle_timeout_seconds`, 300, 1e-3) * 1000,
		clientIdleTimeoutMs: parseSeconds(fields.client_idle_timeout_seconds, `${at}.client_idle_timeout_seconds`, 30, 1e-3) * 1000,
		pingIntervalMs: parseSeconds(fields.ping_interval_seconds, `${at}.ping_interval_seconds`, 10, 0) * 1000,
		refuseLongNonStreaming: parseFlag(fields.refuse_long_non_streaming, `${at}.refuse_long_non_streaming`) ?? false,
		bodyIdleTimeoutMs: parseSeconds(fields.body_idle_timeout_seconds, `${at}.body_idle_timeout_seconds`, 30, 1e-3) * 1000,
		contentEncodings: parseEncodings(fields.content_encodings, `${at}.content_encodings`),
		// As Kestrel's MinRequestBodyDataRate: 240 bytes a second after a 5-second grace.
		minBodyRate: fields.min_body_rate_bytes_per_second === undefined ? 240 : parseByteCount(fields.min_body_rate_bytes_per_second, `${at}.min_body_rate_bytes_per_second`),
		bodyRateGraceMs: parseSeconds(fields.body_rate_grace_seconds, `${at}.body_rate_grace_seconds`, 5, 0) * 1000,
	};
}

function parseMethods(value: unknown, at: string): string[] {
	if (!Array.isArray(value) || value.length === 0) {
		throw new ConfigError(at, `must be a non-empty array of HTTP methods, got ${describe(value)}`);
	}
	const seen = new Set<string>();
	for (const method of value) {
		if (typeof method !== "string" || !METHODS.has(method)) {
			throw new ConfigError(at, `${describe(method)} is not one of ${[...METHODS].join(", ")} (upper case)`);
		}
		if (seen.has(method)) throw new ConfigError(at, `${method} is listed twice`);
		seen.add(method);
	}
	return [...seen];
}

function parsePath(value: unknown, at: string): string {
	if (typeof value !== "string" || !value.startsWith("/")) {
		throw new ConfigError(at, `must be a path starting with "/", got ${describe(value)}`);
	}
	if (value === "/") return value;
	const segments = value.slice(1).split("/");
	for (const segment of segments) {
		if (!SEGMENT.test(segment)) {
			throw new ConfigError(
				at,
				`segment ${JSON.stringify(segment)} of ${JSON.stringify(value)} is neither a literal ([A-Za-z0-9._~-]) nor a :param`,
			);
		}
	}
	return value;
}

function parseByteCount(value: unknown, at: string): number {
	if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
		throw new ConfigError(at, `must be a whole number of bytes (0 or more), got ${describe(value)}`);
	}
	return value;
}

function parseName(value: unknown, at: string): string | undefined {
	if (value === undefined) return undefined;
	if (typeof value !== "string" || value.trim() === "") {
		throw new ConfigError(at, `must be a non-empty string, got ${describe(value)}`);
	}
	return value;
}

function parseGroup(value: unknown, at: string): string | undefined {
	if (value === undefined) return undefined;
	if (typeof value !== "string" || !GROUP.test(value)) {
		throw new ConfigError(at, `must be a lower-case name such as "messages", got ${describe(value)}`);
	}
	return value;
}

/** A duration in seconds (fractions allowed) of at least `min`, at most a day; absent, `fallback`. */
function parseSeconds(value: unknown, at: string, fallback: number, min: number): number {
	if (value === undefined) return fallback;
	if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > 86_400) {
		const floor = min === 0 ? "0 (off)" : "more than 0";
		throw new ConfigError(at, `must be a number of seconds from ${floor} to 86400, got ${describe(value)}`);
	}
	return value;
}

function parseFlag(value: unknown, at: string): boolean | undefined {
	if (value === undefined || typeof value === "boolean") return value;
	throw new ConfigError(at, `must be true or false, got ${describe(value)}`);
}

function parseFailurePolicy(value: unknown, at: string, otherwise: Route["limiterFailure"]): Route["limiterFailure"] {
	if (value === undefined) return otherwise;
	const policy = FAILURE_POLICIES.find((name) => name === value);
	if (policy === undefined) throw new ConfigError(at, `must be one of ${FAILURE_POLICIES.join(", ")}, got ${describe(value)}`);
	return policy;
}

function parseMediaType(value: unknown, at: string): string | undefined {
	if (value === undefined) return undefined;
	if (typeof value !== "string" || !MEDIA_TYPE.test(value)) {
		throw new ConfigError(at, `must be a media type such as "application/json", got ${describe(value)}`);
	}
	return value;
}

function parseEncodings(value: unknown, at: string): ContentEncoding[] {
	if (value === undefined) return [];
	const known: readonly string[] = CONTENT_ENCODINGS;
	if (!Array.isArray(value) || !value.every((name) => typeof name === "string" && known.includes(name))) {
		throw new ConfigError(at, `must be an array of request encodings the guard decodes (${CONTENT_ENCODINGS.join(", ")}), got ${describe(value)}`);
	}
	return value as ContentEncoding[];
}

function parseFieldNames(value: unknown, at: string): string[] {
	if (value === undefined) return [];
	if (!Array.isArray(value) || !value.every((name) => typeof name === "string" && FIELD_NAME.test(name))) {
		throw new ConfigError(at, `must be an array of JSON field names such as ["results_url"], got ${describe(value)}`);
	}
	return value;
}

function rejectDuplicates(routes: Route[]): void {
	const names = new Map<string, number>();
	const pairs = new Map<string, number>();
	routes.forEach((route, index) => {
		const earlier = names.get(route.name);
		if (earlier !== undefined) {
			throw new ConfigError(`ROUTES[${index}].name`, `${JSON.stringify(route.name)} is already used by ROUTES[${earlier}]`);
		}
		names.set(route.name, index);
		for (const method of route.methods) {
			const key = `${method} ${route.path}`;
			const first = pairs.get(key);
			if (first !== undefined) {
				throw new ConfigError(`ROUTES[${index}].methods`, `${key} is already routed by ROUTES[${first}]`);
			}
			pairs.set(key, index);
		}
	});
}


