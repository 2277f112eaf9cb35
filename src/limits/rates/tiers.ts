import { ConfigError } from "../../config/config-error";
import { flag, number, table } from "../../config/config-fields";
import { describe as show, fieldsOf } from "../../config/config-json";
import { type Family, familyOf, parseFamilies } from "./families";
import type { AccelerationConfig, BucketLimits, ResolvedLimits, WorkspaceLimits } from "../decisions";
import { type Budgets, type PeriodBudgets, type Price, parseBudgets, parsePeriodBudgets, parsePrice } from "../spend/money";
import { MAX_PER_MINUTE, MINUTE_MS } from "./token-bucket";

/** One validated tier (`[vars.TIERS.<name>]`). */
export interface Tier {
	readonly name: string;
	readonly limits: BucketLimits;
	/** Absent: the tier has no acceleration limits. */
	readonly acceleration: AccelerationConfig | undefined;
	/** Model families, in the order written (the first whose pattern matches a model wins). */
	readonly families: readonly Family[];
	/** Whether any family has a pool of its own (then a request's model is read before forwarding). */
	readonly pooled: boolean;
	/** The price of a model no priced family names; absent, such a model costs nothing. */
	readonly price: Price | undefined;
	/** Spend budgets per organisation, per workspace and per key. */
	readonly budgets: Budgets | undefined;
	/** Whether input read from the prompt cache counts toward input tokens per minute (default false). */
	readonly countCacheReads: boolean;
}

/** The validated tier configuration. */
export interface TierTable {
	/** Every tier by name; `default` is always there. */
	readonly tiers: ReadonlyMap<string, Tier>;
	/** Organisation id to tier name; an organisation not listed gets `default`. */
	readonly orgTiers: ReadonlyMap<string, string>;
	/** Workspace id to its own lower limits. */
	readonly workspaceLimits: ReadonlyMap<string, WorkspaceLimits>;
	/** Workspace id to its own budget (instead of its tier's workspace budget). */
	readonly workspaceBudgets: ReadonlyMap<string, PeriodBudgets>;
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
const TIER_FIELDS = [...Object.keys(LIMIT_FIELDS), "acceleration", "families", "price", "budgets", "count_cache_reads"];
const WORKSPACE_FIELDS = [...Object.keys(LIMIT_FIELDS), "budget"];
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
	const workspaceBudgets = new Map<string, PeriodBudgets>();
	if (raw.WORKSPACE_LIMITS !== undefined) {
		for (const [id, value] of Object.entries(table(raw.WORKSPACE_LIMITS, "WORKSPACE_LIMITS", "[vars.WORKSPACE_LIMITS]"))) {
			const workspace = parseWorkspace(value, `WORKSPACE_LIMITS.${id}`);
			workspaceLimits.set(id, workspace.limits);
			if (workspace.budget !== undefined) workspaceBudgets.set(id, workspace.budget);
		}
	}
	return { tiers, orgTiers, workspaceLimits, workspaceBudgets };
}

/** The tier of `orgId`. */
export function tierOf(table: TierTable, orgId: string): Tier {
	const tier = table.tiers.get(table.orgTiers.get(orgId) ?? DEFAULT_TIER) ?? table.tiers.get(DEFAULT_TIER);
	if (tier === undefined) throw new Error(`the tier table has no ${DEFAULT_TIER} tier`);
	return tier;
}

/** The family of `model` in the tier of `orgId`, if one names it. */
export function familyFor(table: TierTable, orgId: string, model: string | undefined): Family | undefined {
	return familyOf(tierOf(table, orgId).families, model);
}

/**
 * The limits that apply to a request of `orgId` (and `workspaceId`, if it has limits or a budget of
 * its own), charged to the pool of `family` when that family has limits of its own.
 */
export function resolveLimits(table: TierTable, orgId: string, workspaceId?: string, family?: string): ResolvedLimits {
	const tier = tierOf(table, orgId);
	const workspace = workspaceId === undefined ? undefined : table.workspaceLimits.get(workspaceId);
	const pooled = family === undefined ? undefined : tier.families.find((candidate) => candidate.name === family);
	const workspaceBudget = workspaceId === undefined ? undefined : (table.workspaceBudgets.get(workspaceId) ?? tier.budgets?.workspace);
	const budgets =
		tier.budgets === undefined && workspaceBudget === undefined
			? undefined
			: { organization: tier.budgets?.organization, workspace: workspaceBudget, key: tier.budgets?.key };
	return {
		tier: tier.name,
		organization: tier.limits,
		workspace: workspace === undefined || workspaceId === undefined ? undefined : { id: workspaceId, limits: workspace },
		acceleration: tier.acceleration,
		pool: pooled?.limits === undefined ? undefined : { family: pooled.name, limits: pooled.limits },
		budgets,
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
	const countCacheReads = flag(fields.count_cache_reads, `${at}.count_cache_reads`, false);
	const families = fields.families === undefined ? [] : parseFamilies(fields.families, `${at}.families`, perMinute, countCacheReads);
	const price = fields.price === undefined ? undefined : parsePrice(fields.price, `${at}.price`);
	const budgets = fields.budgets === undefined ? undefined : parseBudgets(fields.budgets, `${at}.budgets`);
	if (budgets !== undefined && price === undefined) {
		// Every model must cost something, or a model no family names would spend a budget for free.
		throw new ConfigError(`${at}.price`, "is required when the tier has budgets: it prices every model no family prices");
	}
	return { name, limits, acceleration, families, pooled: families.some((family) => family.limits !== undefined), price, budgets, countCacheReads };
}

function parseAcceleration(value: unknown, at: string): AccelerationConfig {
	const fields = fieldsOf(value, at, ACCELERATION_FIELDS);
	const windowSeconds = number(fields.window_seconds, `${at}.window_seconds`, { whole: true, min: 1, max: 3600 });
	const multiple = number(fields.multiple, `${at}.multiple`, { min: 1, max: 1000, above: true });
	const floor = number(fields.floor_per_minute, `${at}.floor_per_minute`, { min: 60 / windowSeconds, max: MAX_PER_MINUTE });
	const baselineMinutes = number(fields.baseline_minutes, `${at}.baseline_minutes`, { min: windowSeconds / 60, max: 10_080, above: true });
	return { windowMs: windowSeconds * 1000, multiple, floorPerMinute: floor, baselineMs: baselineMinutes * MINUTE_MS };
}

function parseWorkspace(value: unknown, at: string): { limits: WorkspaceLimits; budget: PeriodBudgets | undefined } {
	const fields = fieldsOf(value, at, WORKSPACE_FIELDS);
	const limits: { -readonly [K in keyof BucketLimits]?: number } = {};
	for (const [field, key] of Object.entries(LIMIT_FIELDS)) {
		if (fields[field] !== undefined) limits[key] = perMinute(fields[field], `${at}.${field}`);
	}
	const budget = fields.budget === undefined ? undefined : parsePeriodBudgets(fields.budget, `${at}.budget`);
	if (Object.keys(limits).length === 0 && budget === undefined) {
		throw new ConfigError(at, `must set at least one of ${WORKSPACE_FIELDS.join(", ")}`);
	}
	return { limits, budget };
}

function perMinute(value: unknown, at: string): number {
	return number(value, at, { whole: true, min: 1, max: MAX_PER_MINUTE });
}

