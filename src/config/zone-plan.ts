import { ConfigError } from "./config-error";
import { describe, type Route } from "./route-table";

const MIB = 1024 * 1024;

/**
 * Cloudflare's default request body limits per zone plan, enforced with its own non-JSON 413
 * before any Worker runs (read as MiB, like the guard's caps).
 */
export const PLAN_BODY_LIMITS = {
	free: 100 * MIB,
	pro: 100 * MIB,
	business: 200 * MIB,
	enterprise: 500 * MIB,
} as const;

/** A zone plan's name. */
export type ZonePlan = keyof typeof PLAN_BODY_LIMITS;

/** The body limit in force in front of the Worker, from `ZONE_PLAN` or `ZONE_BODY_LIMIT_BYTES`. */
export interface ZoneLimit {
	bytes: number;
	/** Where the number comes from, for messages. */
	source: string;
}

/**
 * Reads `ZONE_PLAN` (free, pro, business, enterprise) and the optional `ZONE_BODY_LIMIT_BYTES`
 * (for a limit Cloudflare raised on request). Returns `undefined` when neither is set.
 */
export function parseZoneLimit(plan: unknown, bytes: unknown): ZoneLimit | undefined {
	let known: ZonePlan | undefined;
	if (plan !== undefined && plan !== "") {
		if (typeof plan !== "string" || !(plan in PLAN_BODY_LIMITS)) {
			throw new ConfigError("ZONE_PLAN", `must be one of ${Object.keys(PLAN_BODY_LIMITS).join(", ")}, got ${describe(plan)}`);
		}
		known = plan as ZonePlan;
	}
	if (bytes !== undefined && bytes !== "") {
		if (typeof bytes !== "number" || !Number.isSafeInteger(bytes) || bytes <= 0) {
			throw new ConfigError("ZONE_BODY_LIMIT_BYTES", `must be a whole number of bytes, got ${describe(bytes)}`);
		}
		return { bytes, source: "ZONE_BODY_LIMIT_BYTES" };
	}
	return known === undefined ? undefined : { bytes: PLAN_BODY_LIMITS[known], source: `the ${known} plan's limit` };
}

/** One warning per route whose cap Cloudflare would never let a body reach. */
export function capsOverZoneLimit(routes: readonly Route[], limit: ZoneLimit): string[] {
	return routes
		.filter((route) => route.maxBodyBytes > limit.bytes)
		.map(
			(route) =>
				`route ${route.name}: max_body_bytes ${route.maxBodyBytes} is above ${limit.source} of ${limit.bytes} bytes; ` +
				"Cloudflare answers larger bodies with its own non-JSON 413 before the guard runs",
		);
}
