import { configValue } from "../config/config-json";
import { ConfigError } from "../config/config-error";
import { describe as show } from "../config/route-table";
import type { AccelerationConfig, BucketLimits, ResolvedLimits, WorkspaceLimits } from "./limiter";
import { MAX_PER_MINUTE, MINUTE_MS } from "./token-bucket";

/** One validated tier (`[vars.TIERS.<name>]`). */
export interface Tier {
	readonly name: string;
	readonly limits: BucketLimits;
	/** Absent: the tier has no acceleration limits. */
	readonly acceleration: AccelerationConfig | undefined;
}

/** The validated tier configuration. */
export interface TierTable {
	/** Every tier by name; `default` is always there. */
	readonly tiers: ReadonlyMap<string, Tier>;
	/** Organisation id to tier name; an organisation not listed gets `default`. */
	readonly orgTiers: ReadonlyMap<string, string>;
	/** Workspace id to its own lower limits. */
	readonly workspaceLimits: ReadonlyMap<string, WorkspaceLimits>;
}

/** The raw values, as a Worker's `env` holds them (TOML tables, or the same as JSON strings). */
export interface RawTierConfig {
	TIERS?: unknown;
	ORG_TIERS?: unknown;
	WORKSPACE_LIMITS?: unknown;
}

/** The tier every organisation not named in `ORG_TIERS` gets. */
export const DEFAULT_TIER = "default";

const LIMIT_FIELDS = {
	requests_per_minute: "requestsPerMinute",
	input_tokens_per_minute: "inputTokensPerMinute",
	output_tokens_per_minute: "outputTokensPerMinute",
} as const satisfies Record<string, keyof BucketLimits>;
const TIER_FIELDS = [...Object.keys(LIMIT_FIELDS), "acceleration"];
const ACCELERATION_FIELDS = ["window_seconds", "multiple", "floor_per_minute", "baseline_minutes"];

/**
 * Parses and validates `TIERS`, `ORG_TIERS` and `WORKSPACE_LIMITS` once. Throws a
 * {@link ConfigError} naming the first bad field (`TIERS.gold.acceleration.multiple`); unknown
 * fields are errors, so a misspelt limit never silently disappears.
 */
export function parseTierConfig(raw: RawTierConfig): TierTable {
	const tiersTable = table(raw.TIERS, "TIERS", `[vars.TIERS.${DEFAULT_TIER}]`);
	const tiers = new Map<string, Tier>();
	for (const [name, value] of Object.entries(tiersTable)) tiers.set(name, parseTier(name, value));
	if (!tiers.has(DEFAULT_TIER)) {
		throw new ConfigError(`TIERS.${DEFAULT_TIER}`, "is required: it is the tier of every organisation ORG_TIERS does not name");
	}
	const orgTiers = new Map<string, string>();
	if (raw.ORG_TIERS !== undefined) {
		for (const [org, name] of Object.entries(table(raw.ORG_TIERS, "ORG_TIERS", "[vars.ORG_TIERS]"))) {
			if (typeof name !== "string" || !tiers.has(name)) {
				throw new ConfigError(`ORG_TIERS.${org}`, `must name a tier in TIERS (${[...tiers.keys()].join(", ")}), got ${show(name)}`);
			}
			orgTiers.set(org, name);
		}
	}
	const workspaceLimits = new Map<string, WorkspaceLimits>();
	if (raw.WORKSPACE_LIMITS !== undefined) {
		for (const [id, value] of Object.entries(table(raw.WORKSPACE_LIMITS, "WORKSPACE_LIMITS", "[vars.WORKSPACE_LIMITS]"))) {
			workspaceLimits.set(id, parseWorkspace(value, `WORKSPACE_LIMITS.${id}`));
		}
	}
	return { tiers, orgTiers, workspaceLimits };
}

/** The limits that apply to a request of `orgId` (and `workspaceId`, if it has limits of its own). */
export function resolveLimits(table: TierTable, orgId: string, workspaceId?: string): ResolvedLimits {
	const tier = table.tiers.get(table.orgTiers.get(orgId) ?? DEFAULT_TIER) ?? table.tiers.get(DEFAULT_TIER);
	if (tier === undefined) throw new Error(`the tier table has no ${DEFAULT_TIER} tier`);
	const workspace = workspaceId === undefined ? undefined : table.workspaceLimits.get(workspaceId);
	return {
		tier: tier.name,
		organization: tier.limits,
		workspace: workspace === undefined || workspaceId === undefined ? undefined : { id: workspaceId, limits: workspace },
		acceleration: tier.acceleration,
	};
}

function parseTier(name: string, value: unknown): Tier {
	const at = `TIERS.${name}`;
	const fields = fieldsOf(value, at, TIER_FIELDS);
	const limits = {
		requestsPerMinute: perMinute(fields.requests_per_minute, `${at}.requests_per_minute`),
		inputTokensPerMinute: perMinute(fields.input_tokens_per_minute, `${at}.input_tokens_per_minute`),
		outputTokensPerMinute: perMinute(fields.output_tokens_per_minute, `${at}.output_tokens_per_minute`),
	};
	const acceleration = fields.acceleration === undefined ? undefined : parseAcceleration(fields.acceleration, `${at}.acceleration`);
	return { name, limits, acceleration };
}

function parseAcceleration(value: unknown, at: string): AccelerationConfig {
	const fields = fieldsOf(value, at, ACCELERATION_FIELDS);
	const windowSeconds = number(fields.window_seconds, `${at}.window_seconds`, { whole: true, min: 1, max: 3600 });
	const multiple = number(fields.multiple, `${at}.multiple`, { min: 1, max: 1000, above: true });
	const floor = number(fields.floor_per_minute, `${at}.floor_per_minute`, { min: 60 / windowSeconds, max: MAX_PER_MINUTE });
	const baselineMinutes = number(fields.baseline_minutes, `${at}.baseline_minutes`, { min: windowSeconds / 60, max: 10_080, above: true });
	return { windowMs: windowSeconds * 1000, multiple, floorPerMinute: floor, baselineMs: baselineMinutes * MINUTE_MS };
}

function parseWorkspace(value: unknown, at: string): WorkspaceLimits {
	const fields = fieldsOf(value, at, Object.keys(LIMIT_FIELDS));
	const limits: { -readonly [K in keyof BucketLimits]?: number } = {};
	for (const [field, key] of Object.entries(LIMIT_FIELDS)) {
		if (fields[field] !== undefined) limits[key] = perMinute(fields[field], `${at}.${field}`);
	}
	if (Object.keys(limits).length === 0) {
		throw new ConfigError(at, `must set at least one of ${Object.keys(LIMIT_FIELDS).join(", ")}`);
	}
	return limits;
}

function perMinute(value: unknown, at: string): number {
	return number(value, at, { whole: true, min: 1, max: MAX_PER_MINUTE });
}

interface Bounds {
	readonly min: number;
	readonly max: number;
	readonly whole?: boolean;
	/** The value must be strictly above `min`. */
	readonly above?: boolean;
}

function number(value: unknown, at: string, bounds: Bounds): number {
	const ok =
		typeof value === "number" &&
		Number.isFinite(value) &&
		(!bounds.whole || Number.isInteger(value)) &&
		(bounds.above ? value > bounds.min : value >= bounds.min) &&
		value <= bounds.max;
	if (!ok) {
		const kind = bounds.whole ? "a whole number" : "a number";
		const range = `${bounds.above ? "above" : "from"} ${trim(bounds.min)} ${bounds.above ? "and at most" : "to"} ${trim(bounds.max)}`;
		throw new ConfigError(at, `must be ${kind} ${range}, got ${show(value)}`);
	}
	return value;
}

function table(raw: unknown, at: string, hint: string): Record<string, unknown> {
	if (raw === undefined || raw === null) throw new ConfigError(at, `is missing; add ${hint} to wrangler.toml`);
	const value = configValue(raw, at);
	if (typeof value !== "object" || value === null || Array.isArray(value)) {
		throw new ConfigError(at, `must be a table, got ${show(value)}`);
	}
	return value as Record<string, unknown>;
}

function fieldsOf(value: unknown, at: string, allowed: readonly string[]): Record<string, unknown> {
	if (typeof value !== "object" || value === null || Array.isArray(value)) {
		throw new ConfigError(at, `must be a table with ${allowed.join(", ")}, got ${show(value)}`);
	}
	const fields = value as Record<string, unknown>;
	for (const key of Object.keys(fields)) {
		if (!allowed.includes(key)) throw new ConfigError(`${at}.${key}`, `unknown field; expected one of ${allowed.join(", ")}`);
	}
	return fields;
}

function trim(n: number): string {
	return Number.isInteger(n) ? String(n) : n.toFixed(3).replace(/0+$/, "");
}
