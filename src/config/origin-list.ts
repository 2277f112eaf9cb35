import { ConfigError } from "./config-error";
import { describe, fieldsOf } from "./config-json";
import { number } from "./config-fields";
import { parseOriginUrl } from "./origin-url";

/** One origin of a route's `origins` list: a base URL or a service binding, with its priority and weight. */
export interface OriginSpec {
	/** The base URL, for an origin given as `url`. */
	readonly url: string | undefined;
	/** The service binding's name, for an origin given as `binding`. */
	readonly binding: string | undefined;
	/** Lower goes first: every origin of priority 1 is tried before any of priority 2. */
	readonly priority: number;
	/** The share of its priority's requests an origin is picked first for (weight / sum of weights). */
	readonly weight: number;
	/** How logs, the breaker and the health view name it: the base URL, or `service:NAME`. */
	readonly name: string;
}

/** How a route with `origins` retries, before the first byte of an answer only (README "Origins"). */
export interface RetryPolicy {
	/** Attempts per request, the first included (default 2). */
	readonly maxAttempts: number;
	/** The largest body (by a trusted `Content-Length`) kept in memory to be sent again (default 1 MiB). */
	readonly replayMaxBytes: number;
	/** No response headers this long after an attempt was sent moves to the next origin, in ms; 0: only the response timeout. */
	readonly connectTimeoutMs: number;
	/** `5xx` statuses retried besides `503` and `529` (default none: another 5xx may have done the work). */
	readonly retryStatuses: readonly number[];
}

/** The route fields this file reads. */
export const ORIGIN_LIST_FIELDS = ["origins", "max_attempts", "replay_max_bytes", "connect_timeout_seconds", "retry_statuses"] as const;

const ENTRY_FIELDS = ["url", "binding", "priority", "weight"];
const BINDING = /^[A-Z][A-Z0-9_]*$/;
const MIB = 1024 * 1024;

/**
 * The `origins` list of a route and its retry fields, validated; `undefined` when the route has no
 * list (its single `origin`, or the default origin, serves it exactly as before). The retry fields
 * without a list are an error: they would silently do nothing.
 */
export function parseOriginList(fields: Record<string, unknown>, at: string): { origins: OriginSpec[]; retry: RetryPolicy } | undefined {
	if (fields.origins === undefined) {
		const stray = ORIGIN_LIST_FIELDS.find((name) => name !== "origins" && fields[name] !== undefined);
		if (stray !== undefined) throw new ConfigError(`${at}.${stray}`, "applies only to a route with an origins list; a route with one origin is never retried");
		return undefined;
	}
	if (fields.origin !== undefined) throw new ConfigError(`${at}.origins`, "cannot be set with origin: give the route one origin or a list");
	const list = fields.origins;
	if (!Array.isArray(list) || list.length === 0) {
		throw new ConfigError(`${at}.origins`, `must be a non-empty array of tables such as { url = "https://...", priority = 1, weight = 1 }, got ${describe(list)}`);
	}
	const origins = list.map((entry, index) => parseEntry(entry, `${at}.origins[${index}]`));
	const seen = new Map<string, number>();
	origins.forEach((origin, index) => {
		const earlier = seen.get(origin.name);
		if (earlier !== undefined) throw new ConfigError(`${at}.origins[${index}]`, `${origin.name} is already origins[${earlier}]`);
		seen.set(origin.name, index);
	});
	const retry: RetryPolicy = {
		maxAttempts: fields.max_attempts === undefined ? 2 : number(fields.max_attempts, `${at}.max_attempts`, { min: 1, max: 5, whole: true }),
		replayMaxBytes: fields.replay_max_bytes === undefined ? MIB : number(fields.replay_max_bytes, `${at}.replay_max_bytes`, { min: 0, max: 16 * MIB, whole: true }),
		connectTimeoutMs:
			fields.connect_timeout_seconds === undefined ? 0 : number(fields.connect_timeout_seconds, `${at}.connect_timeout_seconds`, { min: 0, max: 600 }) * 1000,
		retryStatuses: parseStatuses(fields.retry_statuses, `${at}.retry_statuses`),
	};
	return { origins, retry };
}

function parseEntry(entry: unknown, at: string): OriginSpec {
	const fields = fieldsOf(entry, at, ENTRY_FIELDS);
	if ((fields.url === undefined) === (fields.binding === undefined)) {
		throw new ConfigError(at, "must have exactly one of url (a base URL) or binding (a service binding's name)");
	}
	const priority = fields.priority === undefined ? 1 : number(fields.priority, `${at}.priority`, { min: 0, max: 100, whole: true });
	const weight = fields.weight === undefined ? 1 : number(fields.weight, `${at}.weight`, { min: 1, max: 1000, whole: true });
	if (fields.url !== undefined) {
		const url = parseOriginUrl(fields.url, `${at}.url`);
		return { url, binding: undefined, priority, weight, name: url };
	}
	const binding = fields.binding;
	if (typeof binding !== "string" || !BINDING.test(binding)) {
		throw new ConfigError(`${at}.binding`, `must be a service binding's name such as "ORIGIN2" (upper case), got ${describe(binding)}`);
	}
	return { url: undefined, binding, priority, weight, name: `service:${binding}` };
}

function parseStatuses(value: unknown, at: string): number[] {
	if (value === undefined) return [];
	if (!Array.isArray(value)) throw new ConfigError(at, `must be an array of 5xx statuses such as [502], got ${describe(value)}`);
	return value.map((status, index) => number(status, `${at}[${index}]`, { min: 500, max: 599, whole: true }));
}
