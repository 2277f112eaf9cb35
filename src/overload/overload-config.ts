import { configValue, fieldsOf } from "../config/config-json";
import { ConfigError } from "../config/config-error";
import { describe } from "../config/route-table";

/** When the origin circuit breaker opens, and how it tries the origin again. */
export interface BreakerConfig {
	/** The fewest origin failures within {@link windowMs} that open the breaker. */
	readonly failures: number;
	/** The fewest requests with an outcome within {@link windowMs} before the breaker may open. */
	readonly minRequests: number;
	/** The share of those requests (0 to 1) that must have failed for the breaker to open. */
	readonly failureRate: number;
	/** The sliding window failures are counted over, in ms. */
	readonly windowMs: number;
	/** How long the breaker stays open before it lets probes through, in ms. */
	readonly cooldownMs: number;
	/** Probe requests let through while half-open; all must succeed for it to close. */
	readonly probes: number;
}

/** The validated load-shedding, fairness and circuit-breaker settings (`[vars.OVERLOAD]`). */
export interface OverloadConfig {
	/** Requests in flight to the origin per isolate, all route groups together. */
	readonly maxInFlight: number;
	/** The fraction (0 < x <= 1) of a group's capacity one organisation may hold. */
	readonly orgShare: number;
	/** What a shed (529) or fairness (429) answer tells clients to wait, in whole seconds. */
	readonly retryAfterSeconds: number;
	/** Per-group caps on requests in flight; a group not listed is bounded only by {@link maxInFlight}. */
	readonly groups: ReadonlyMap<string, number>;
	readonly breaker: BreakerConfig;
}

/** What an absent `[vars.OVERLOAD]` (or any key left out of it) means. */
export const OVERLOAD_DEFAULTS: OverloadConfig = Object.freeze({
	maxInFlight: 100,
	orgShare: 0.5,
	retryAfterSeconds: 1,
	groups: new Map<string, number>(),
	breaker: Object.freeze({ failures: 5, minRequests: 20, failureRate: 0.5, windowMs: 10_000, cooldownMs: 5_000, probes: 2 }),
});

const FIELDS = ["max_in_flight", "org_share", "retry_after_seconds", "groups", "breaker"] as const;
const BREAKER_FIELDS = ["failures", "min_requests", "failure_rate", "window_seconds", "cooldown_seconds", "probes"] as const;
const GROUP = /^[a-z][a-z0-9_-]*$/;
// Upper bounds keep typos (an extra zero or three) from passing as configuration.
const MAX_IN_FLIGHT = 1_000_000;
const MAX_SECONDS = 3600;
const MAX_FAILURES = 1000;
const MAX_PROBES = 100;

/**
 * Parses and validates `[vars.OVERLOAD]` from `wrangler.toml` (a table, or the same as a JSON
 * string). Absent (or an empty string), every setting takes its default from
 * {@link OVERLOAD_DEFAULTS}. Throws a {@link ConfigError} naming the bad field, e.g.
 * `OVERLOAD.groups.files` or `OVERLOAD.breaker.failures`; unknown keys are rejected.
 */
export function parseOverloadConfig(raw: unknown, field = "OVERLOAD"): OverloadConfig {
	if (raw === undefined || raw === "") return OVERLOAD_DEFAULTS;
	const fields = fieldsOf(configValue(raw, field), field, FIELDS);
	const defaults = OVERLOAD_DEFAULTS;
	return {
		maxInFlight: optional(fields.max_in_flight, defaults.maxInFlight, (v) => whole(v, `${field}.max_in_flight`, MAX_IN_FLIGHT)),
		orgShare: optional(fields.org_share, defaults.orgShare, (v) => share(v, `${field}.org_share`)),
		retryAfterSeconds: optional(fields.retry_after_seconds, defaults.retryAfterSeconds, (v) =>
			whole(v, `${field}.retry_after_seconds`, MAX_SECONDS),
		),
		groups: parseGroups(fields.groups, `${field}.groups`),
		breaker: parseBreaker(fields.breaker, `${field}.breaker`),
	};
}

function parseGroups(value: unknown, at: string): ReadonlyMap<string, number> {
	if (value === undefined) return new Map();
	if (typeof value !== "object" || value === null || Array.isArray(value)) {
		throw new ConfigError(at, `must be a table of group = cap, such as { messages = 60 }, got ${describe(value)}`);
	}
	const caps = new Map<string, number>();
	for (const [group, cap] of Object.entries(value)) {
		if (!GROUP.test(group)) {
			throw new ConfigError(`${at}.${group}`, `is not a route group name (lower case, such as "messages")`);
		}
		caps.set(group, whole(cap, `${at}.${group}`, MAX_IN_FLIGHT));
	}
	return caps;
}

function parseBreaker(value: unknown, at: string): BreakerConfig {
	if (value === undefined) return OVERLOAD_DEFAULTS.breaker;
	const fields = fieldsOf(value, at, BREAKER_FIELDS);
	const defaults = OVERLOAD_DEFAULTS.breaker;
	return {
		failures: optional(fields.failures, defaults.failures, (v) => whole(v, `${at}.failures`, MAX_FAILURES)),
		minRequests: optional(fields.min_requests, defaults.minRequests, (v) => whole(v, `${at}.min_requests`, MAX_IN_FLIGHT)),
		failureRate: optional(fields.failure_rate, defaults.failureRate, (v) => share(v, `${at}.failure_rate`)),
		windowMs: optional(fields.window_seconds, defaults.windowMs, (v) => whole(v, `${at}.window_seconds`, MAX_SECONDS) * 1000),
		cooldownMs: optional(fields.cooldown_seconds, defaults.cooldownMs, (v) => whole(v, `${at}.cooldown_seconds`, MAX_SECONDS) * 1000),
		probes: optional(fields.probes, defaults.probes, (v) => whole(v, `${at}.probes`, MAX_PROBES)),
	};
}

/** The default when the key is absent, else the value as `parse` validates it. */
function optional<T>(value: unknown, fallback: T, parse: (value: unknown) => T): T {
	return value === undefined ? fallback : parse(value);
}

function whole(value: unknown, at: string, max: number): number {
	if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > max) {
		throw new ConfigError(at, `must be a whole number from 1 to ${max}, got ${describe(value)}`);
	}
	return value;
}

function share(value: unknown, at: string): number {
	if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || value > 1) {
		throw new ConfigError(at, `must be a fraction above 0 and at most 1 (such as 0.5), got ${describe(value)}`);
	}
	return value;
}



