import type { Cost, LimitScope, LimitStatus, Rejection, ResolvedLimits } from "../decisions";
import { MAX_DEBT_MINUTES, MAX_PER_MINUTE } from "./token-bucket";

/**
 * The pure rules the usage object applies to one request: which buckets it touches, which hit
 * decides a rejection, which status the headers show. No state, no clock.
 */

/** A bucket's dimension; also the name of the limit it enforces. */
export type Dimension = "requests" | "input_tokens" | "output_tokens";

/** One bucket a request touches: its storage key, what it limits, and its size. */
export interface BucketSpec {
	readonly key: string;
	readonly dimension: Dimension;
	readonly scope: LimitScope;
	readonly perMinute: number;
	/** The model family whose pool this bucket is (absent: the organisation's pool, or a workspace's). */
	readonly family?: string;
}

/** A limit a request would exceed, and how long until it would not (`null`: never). */
export interface Hit {
	readonly limit: Rejection["limit"];
	readonly scope: LimitScope;
	readonly allowedPerMinute: number;
	readonly wait: number | null;
	readonly family?: string | undefined;
}

/** The field of a {@link Cost} each dimension takes. */
export const COST_FIELD = { requests: "requests", input_tokens: "inputTokens", output_tokens: "outputTokens" } as const;
const LIMIT_FIELD = { requests: "requestsPerMinute", input_tokens: "inputTokensPerMinute", output_tokens: "outputTokensPerMinute" } as const;
const DIMENSIONS: readonly Dimension[] = ["requests", "input_tokens", "output_tokens"];
const MAX_UNITS = MAX_PER_MINUTE * MAX_DEBT_MINUTES;

/**
 * The organisation's buckets (or, for a model family with a pool of its own, the family's instead),
 * then those its workspace limits on its own, across every family.
 */
export function specsFor(limits: ResolvedLimits): BucketSpec[] {
	const pool = limits.pool;
	const specs: BucketSpec[] = DIMENSIONS.map((dimension) =>
		pool === undefined
			? { key: `org:${dimension}`, dimension, scope: "organization", perMinute: limits.organization[LIMIT_FIELD[dimension]] }
			: { key: `fam:${pool.family}:${dimension}`, dimension, scope: "organization", perMinute: pool.limits[LIMIT_FIELD[dimension]], family: pool.family },
	);
	const workspace = limits.workspace;
	if (workspace !== undefined) {
		for (const dimension of DIMENSIONS) {
			const perMinute = workspace.limits[LIMIT_FIELD[dimension]];
			if (perMinute !== undefined) specs.push({ key: `ws:${workspace.id}:${dimension}`, dimension, scope: "workspace", perMinute });
		}
	}
	return specs;
}

/** The buckets of several pools, each once (a workspace's buckets are shared by every pool). */
export function specsOfPools(pools: readonly ResolvedLimits[]): BucketSpec[] {
	const specs = new Map<string, BucketSpec>();
	for (const limits of pools) for (const spec of specsFor(limits)) if (!specs.has(spec.key)) specs.set(spec.key, spec);
	return [...specs.values()];
}

/** Whether two resolved limits name the same pool (the same model family's, or both the organisation's). */
export function samePool(a: ResolvedLimits, b: ResolvedLimits): boolean {
	return (a.pool?.family ?? null) === (b.pool?.family ?? null);
}

/** The hit that decides the retry: one that can never pass, else the longest wait. */
export function worse(current: Hit | undefined, next: Hit): Hit {
	if (current === undefined) return next;
	if (current.wait === null) return current;
	if (next.wait === null) return next;
	return next.wait > current.wait ? next : current;
}

/** The status with fewer units remaining (on a tie, the smaller limit). */
export function moreRestrictive(a: LimitStatus, b: LimitStatus): LimitStatus {
	if (a.remaining !== b.remaining) return b.remaining < a.remaining ? b : a;
	return b.limit < a.limit ? b : a;
}

/** `cost`, if every field is a whole number in range; a RangeError otherwise. */
export function checkedCost(cost: Cost, name: string): Cost {
	for (const field of ["requests", "inputTokens", "outputTokens"] as const) {
		const units = cost[field];
		if (!Number.isSafeInteger(units) || units < 0 || units > MAX_UNITS) {
			throw new RangeError(`${name}.${field} must be a whole number from 0 to ${MAX_UNITS}, got ${units}`);
		}
	}
	return cost;
}

/** `units`, if a whole number in range (either sign); a RangeError otherwise. */
export function checkedDelta(units: number, name: string): number {
	if (!Number.isSafeInteger(units) || Math.abs(units) > MAX_UNITS) {
		throw new RangeError(`${name} must be a whole number within ±${MAX_UNITS}, got ${units}`);
	}
	return units;
}
