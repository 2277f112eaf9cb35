import { ConfigError } from "../../config/config-error";
import { number } from "../../config/config-fields";
import { fieldsOf } from "../../config/config-json";

/**
 * Money: prices per model family, budgets per period, and the cost of a settled request, as pure
 * integer arithmetic. Amounts are kept in nano-dollars (10^-9 USD), so a price given to a thousandth
 * of a dollar per million tokens is a whole number of nano-dollars per token and every cost, sum
 * and comparison is exact.
 */

/** A budget's period, in UTC: a calendar day or a calendar month. */
export type Period = "day" | "month";
export const PERIODS: readonly Period[] = ["day", "month"];

/** Whose money a budget limits: the organisation's, one workspace's, or one API key's. */
export type BudgetScope = "organization" | "workspace" | "key";
export const BUDGET_SCOPES: readonly BudgetScope[] = ["organization", "workspace", "key"];

/** Nano-dollars per token, by kind of token; and what a Message Batch pays of that. */
export interface Price {
	readonly input: number;
	readonly output: number;
	readonly cacheWrite: number;
	readonly cacheRead: number;
	/** The fraction of these prices a request in a Message Batch costs (default 0.5, as the API's batch discount). */
	readonly batchFactor: number;
}

/** What a batched request pays of the price, unless the price says otherwise. */
export const DEFAULT_BATCH_FACTOR = 0.5;

/** Nano-dollars a scope may spend per period; a period not set is unlimited. */
export interface PeriodBudgets {
	readonly day?: number;
	readonly month?: number;
}

/** The budgets that apply to one request, by scope. */
export interface Budgets {
	readonly organization?: PeriodBudgets;
	readonly workspace?: PeriodBudgets;
	readonly key?: PeriodBudgets;
}

/** The tokens a request used, as the origin reported them. */
export interface Tokens {
	readonly input: number;
	readonly output: number;
	readonly cacheWrite: number;
	readonly cacheRead: number;
}

/** A budget that is spent: which, how much, and when it starts again. */
export interface BudgetHit {
	readonly scope: BudgetScope;
	/** The workspace or key ID (absent for the organisation). */
	readonly id?: string;
	readonly period: Period;
	readonly limitNanos: number;
	readonly spentNanos: number;
	/** When the period turns and the budget is whole again, epoch ms. */
	readonly resetAt: number;
	/** A budget not yet spent that a claim did not fit: what other requests in flight hold, and what this one claimed. */
	readonly heldNanos?: number;
	readonly claimNanos?: number;
}

const NANOS_PER_USD = 1_000_000_000;
/** Prices are per million tokens: a dollar per million is this many nano-dollars per token. */
const NANOS_PER_TOKEN_PER_USD_PER_MILLION = 1000;
const MAX_PRICE_USD = 1_000_000;
const MAX_BUDGET_USD = 1_000_000;

/** `[... price]`: USD per million tokens of each kind, at most three decimals (a nano-dollar a token). */
export function parsePrice(value: unknown, at: string): Price {
	const fields = fieldsOf(value, at, ["input", "output", "cache_write", "cache_read", "batch_factor"]);
	const read = (field: string): number => {
		const usd = number(fields[field], `${at}.${field}`, { min: 0, max: MAX_PRICE_USD });
		const nanos = Math.round(usd * NANOS_PER_TOKEN_PER_USD_PER_MILLION);
		if (Math.abs(nanos - usd * NANOS_PER_TOKEN_PER_USD_PER_MILLION) > 1e-6) {
			throw new ConfigError(`${at}.${field}`, `must have at most three decimals (USD per million tokens), got ${usd}`);
		}
		return nanos;
	};
	const batchFactor = fields.batch_factor === undefined ? DEFAULT_BATCH_FACTOR : number(fields.batch_factor, `${at}.batch_factor`, { min: 0, max: 1, above: true });
	return { input: read("input"), output: read("output"), cacheWrite: read("cache_write"), cacheRead: read("cache_read"), batchFactor };
}

/** `budgets = { organization = { day = 5 }, workspace = { month = 50 }, key = { day = 1 } }`, in USD. */
export function parseBudgets(value: unknown, at: string): Budgets {
	const fields = fieldsOf(value, at, BUDGET_SCOPES);
	const budgets: Record<string, PeriodBudgets> = {};
	for (const scope of BUDGET_SCOPES) {
		if (fields[scope] !== undefined) budgets[scope] = parsePeriodBudgets(fields[scope], `${at}.${scope}`);
	}
	if (Object.keys(budgets).length === 0) throw new ConfigError(at, `must set at least one of ${BUDGET_SCOPES.join(", ")}`);
	return budgets;
}

/** `{ day = 5, month = 100 }`: USD a scope may spend per UTC day and per UTC month. */
export function parsePeriodBudgets(value: unknown, at: string): PeriodBudgets {
	const fields = fieldsOf(value, at, PERIODS);
	const budgets: { day?: number; month?: number } = {};
	for (const period of PERIODS) {
		if (fields[period] === undefined) continue;
		const usd = number(fields[period], `${at}.${period}`, { min: 0, max: MAX_BUDGET_USD, above: true });
		budgets[period] = Math.round(usd * NANOS_PER_USD);
	}
	if (budgets.day === undefined && budgets.month === undefined) throw new ConfigError(at, "must set day, month or both (USD per UTC period)");
	return budgets;
}

/** The cost of `tokens` at `price`, in nano-dollars. */
export function costOf(price: Price, tokens: Tokens): number {
	const cost = tokens.input * price.input + tokens.output * price.output + tokens.cacheWrite * price.cacheWrite + tokens.cacheRead * price.cacheRead;
	return Math.min(cost, Number.MAX_SAFE_INTEGER);
}

/** The cost of `tokens` of a batched request at `price`, in nano-dollars (whole, rounded up). */
export function batchCostOf(price: Price, tokens: Tokens): number {
	return Math.ceil(costOf(price, tokens) * price.batchFactor);
}

/** The period containing `now`: its name (`2026-05-02`, `2026-05`) and when the next begins. */
export function windowOf(period: Period, now: number): { id: string; resetAt: number } {
	const date = new Date(now);
	const year = date.getUTCFullYear();
	const month = date.getUTCMonth();
	if (period === "month") return { id: date.toISOString().slice(0, 7), resetAt: Date.UTC(year, month + 1, 1) };
	return { id: date.toISOString().slice(0, 10), resetAt: Date.UTC(year, month, date.getUTCDate() + 1) };
}

/** Dollars for people: at least cents, and as many more decimals as the amount has (`$0.0024`). */
export function formatUsd(nanos: number): string {
	const sign = nanos < 0 ? "-" : "";
	const fixed = (Math.abs(nanos) / NANOS_PER_USD).toFixed(9).replace(/0+$/, "");
	const [whole, cents = ""] = fixed.split(".");
	return `${sign}$${whole}.${cents.padEnd(2, "0")}`;
}

/** Nano-dollars as a number of dollars, for log lines. */
export function usd(nanos: number): number {
	return nanos / NANOS_PER_USD;
}
