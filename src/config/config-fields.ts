import { ConfigError } from "./config-error";
import { configValue, describe as show } from "./config-json";

/** The field checks the usage-limit tables share (tiers, families, prices, budgets); each error names the field (`TIERS.gold.price.input`). */

/** The range a number must be in. */
export interface Bounds {
	readonly min: number;
	readonly max: number;
	readonly whole?: boolean;
	/** The value must be strictly above `min`. */
	readonly above?: boolean;
}

/** `value`, if a number within `bounds`; a {@link ConfigError} naming `at` otherwise. */
export function number(value: unknown, at: string, bounds: Bounds): number {
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

/** `value`, if a boolean; `fallback` when absent. */
export function flag(value: unknown, at: string, fallback: boolean): boolean {
	if (value === undefined) return fallback;
	if (typeof value !== "boolean") throw new ConfigError(at, `must be true or false, got ${show(value)}`);
	return value;
}

/** A top-level table (`TIERS`), given as TOML data or as a JSON string. */
export function table(raw: unknown, at: string, hint: string): Record<string, unknown> {
	if (raw === undefined || raw === null) throw new ConfigError(at, `is missing; add ${hint} to wrangler.toml`);
	const value = configValue(raw, at);
	if (typeof value !== "object" || value === null || Array.isArray(value)) {
		throw new ConfigError(at, `must be a table, got ${show(value)}`);
	}
	return value as Record<string, unknown>;
}


/** A nested table of named entries (`families`), in the order written. */
export function entriesOf(value: unknown, at: string): [string, unknown][] {
	if (typeof value !== "object" || value === null || Array.isArray(value)) {
		throw new ConfigError(at, `must be a table, got ${show(value)}`);
	}
	return Object.entries(value as Record<string, unknown>);
}


function trim(n: number): string {
	return Number.isInteger(n) ? String(n) : n.toFixed(3).replace(/0+$/, "");
}
