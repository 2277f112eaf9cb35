import type { Rejection } from "../decisions";
import { type BudgetHit, formatUsd } from "../spend/money";

/** What a refused request is told: the message of its `429`, and its `retry-after`. */

/** The `retry-after` header value: whole seconds, at least 1, never early. */
export function retryAfterSeconds(retryAfterMs: number): number {
	return Math.max(1, Math.ceil(retryAfterMs / 1000));
}

/** The message of a `429 rate_limit_error` for a rejection. */
export function rejectionMessage(rejection: Rejection): string {
	if (rejection.limit === "spend" && rejection.budget !== undefined) return spendMessage(rejection.budget);
	const whose = rejection.scope === "workspace" ? "your workspace's" : rejection.scope === "key" ? "your API key's" : "your organization's";
	const limit = formatCount(rejection.allowedPerMinute);
	const never = rejection.retryAfterMs === null;
	// A family's pool is named, so a client can tell which model's limit it hit.
	const pool = rejection.family === undefined ? "" : ` for the ${rejection.family} model family`;
	switch (rejection.limit) {
		case "requests":
			return `This request would exceed ${whose} rate limit of ${limit} requests per minute${pool}. Retry after the time in the retry-after header.`;
		case "input_tokens":
			return never
				? `This request's input tokens alone exceed ${whose} rate limit of ${limit} input tokens per minute${pool}; reduce the prompt length.`
				: `This request would exceed ${whose} rate limit of ${limit} input tokens per minute${pool}. Reduce the prompt length or retry after the time in the retry-after header.`;
		case "output_tokens":
			return never
				? `This request's reserved output tokens alone exceed ${whose} rate limit of ${limit} output tokens per minute${pool}; lower max_tokens.`
				: `This request would exceed ${whose} rate limit of ${limit} output tokens per minute${pool}. Retry after the time in the retry-after header.`;
		case "acceleration":
			return `${whose.charAt(0).toUpperCase()}${whose.slice(1)} usage rose sharply, so it is limited to about ${limit} requests per minute for now, even below its rate limits. Ramp up usage gradually and keep it consistent to avoid rate limits.`;
		case "spend":
			return `This request would exceed ${whose} spend budget.`;
		default:
			return assertNever(rejection.limit);
	}
}

/** The message of a `429` for a spent budget: which budget, what was spent, and when it resets. */
export function spendMessage(budget: BudgetHit): string {
	const whose = budget.scope === "workspace" ? "Your workspace's" : budget.scope === "key" ? "Your API key's" : "Your organization's";
	const period = budget.period === "day" ? "daily" : "monthly";
	const reset = new Date(budget.resetAt).toISOString();
	if (budget.claimNanos !== undefined) {
		const left = Math.max(0, budget.limitNanos - budget.spentNanos - (budget.heldNanos ?? 0));
		const inFlight = budget.heldNanos ? ` (${formatUsd(budget.heldNanos)} of it is held by requests in flight)` : "";
		return `This request could cost up to ${formatUsd(budget.claimNanos)} (its input estimate and max_tokens at the model's prices), more than the ${formatUsd(left)} left of ${whose.charAt(0).toLowerCase()}${whose.slice(1)} ${period} spend budget of ${formatUsd(budget.limitNanos)}${inFlight}. Lower max_tokens, or retry once requests in flight have finished; the budget resets at ${reset}.`;
	}
	return `${whose} ${period} spend budget of ${formatUsd(budget.limitNanos)} is spent (${formatUsd(budget.spentNanos)} so far this ${budget.period}, UTC). It resets at ${reset}; retrying before then cannot succeed.`;
}

function formatCount(n: number): string {
	return Math.floor(n)
		.toString()
		.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

function assertNever(value: never): never {
	throw new Error(`unhandled limit ${String(value)}`);
}
