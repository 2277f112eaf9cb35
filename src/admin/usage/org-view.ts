import type { GuardConfig } from "../../config/guard-config";
import type { KeyRecord } from "../../keys/key-record";
import type { LimitStatus } from "../../limits/decisions";
import { PERIODS, usd, windowOf } from "../../limits/spend/money";
import { tierOf } from "../../limits/rates/tiers";
import type { HistorySeries } from "../../limits/console/usage-history";
import type { ObjectReport } from "./usage-calls";

/** A series as the admin API sends it: oldest first, one value per step, dollars as numbers. */
export interface SeriesView {
	start: string;
	step_seconds: number;
	admitted: number[];
	refused: Record<string, number[]>;
	input_tokens: number[];
	cache_read_input_tokens: number[];
	cache_creation_input_tokens: number[];
	output_tokens: number[];
	spend_usd: number[];
}

/** One organisation as the admin API sends it. */
export interface OrgView {
	id: string;
	tier: string | null;
	keys: { total: number; active: number; disabled: number };
	limits: { pool: string; limit: "requests" | "input_tokens" | "output_tokens"; per_minute: number; remaining: number; resets_at: string }[];
	spend: { period: "day" | "month"; spent_usd: number; budget_usd: number | null; resets_at: string }[];
	last_refusal: { request_id: string; reason: string; at: string } | null;
	/** Totals over the minutes the history covers. */
	recent: { minutes: number; admitted: number; refused: Record<string, number> };
	revoked_keys: string[];
	/**
	 * Claims outstanding (requests in flight, or lost with their isolate until they expire) and what
	 * they hold; settlements made and the money they charged since the usage object's state began.
	 * Once every request has ended, `outstanding` is 0 (ACCOUNTING.md's invariant).
	 */
	claims: {
		outstanding: number;
		held: { requests: number; input_tokens: number; output_tokens: number; usd: number };
		settled: number;
		settled_usd: number;
	};
	history?: { minutes: SeriesView; days: SeriesView };
}

/** An organisation's view from its usage object's report (or `undefined`: no limits configured). */
export function orgView(config: GuardConfig, orgId: string, keys: readonly KeyRecord[], report: ObjectReport | undefined, withHistory: boolean): OrgView {
	const tier = config.tiers === undefined ? undefined : tierOf(config.tiers, orgId);
	const mine = keys.filter((key) => key.org_id === orgId);
	const active = mine.filter((key) => key.status === "active").length;
	const view: OrgView = {
		id: orgId,
		tier: tier?.name ?? null,
		keys: { total: mine.length, active, disabled: mine.length - active },
		limits: [],
		spend: [],
		last_refusal: null,
		recent: { minutes: 0, admitted: 0, refused: {} },
		revoked_keys: [],
		claims: { outstanding: 0, held: { requests: 0, input_tokens: 0, output_tokens: 0, usd: 0 }, settled: 0, settled_usd: 0 },
	};
	if (report === undefined) return view;
	const claims = report.claims;
	view.claims = {
		outstanding: claims.outstanding,
		held: { requests: claims.held.requests, input_tokens: claims.held.inputTokens, output_tokens: claims.held.outputTokens, usd: usd(claims.held.nanos) },
		settled: claims.settled,
		settled_usd: usd(claims.settledNanos),
	};
	for (const pool of report.pools) {
		const name = pool.family ?? "organization";
		const entries: [OrgView["limits"][number]["limit"], LimitStatus][] = [
			["requests", pool.snapshot.requests],
			["input_tokens", pool.snapshot.inputTokens],
			["output_tokens", pool.snapshot.outputTokens],
		];
		for (const [limit, status] of entries) {
			view.limits.push({ pool: name, limit, per_minute: status.limit, remaining: status.remaining, resets_at: iso(status.resetAt) });
		}
	}
	const now = Date.now();
	const budgets = tier?.budgets?.organization;
	for (const period of PERIODS) {
		const line = report.spend.find((entry) => entry.scope === "organization" && entry.period === period);
		const budget = budgets?.[period];
		view.spend.push({
			period,
			spent_usd: usd(line?.spentNanos ?? 0),
			budget_usd: budget === undefined ? null : usd(budget),
			resets_at: iso(line?.resetAt ?? windowOf(period, now).resetAt),
		});
	}
	const last = report.history.lastRefusal;
	view.last_refusal = last === null ? null : { request_id: last.requestId, reason: last.reason, at: iso(last.at) };
	const minutes = report.history.minutes;
	view.recent = { minutes: minutes.admitted.length, admitted: sum(minutes.admitted), refused: mapValues(minutes.refused, sum) };
	view.revoked_keys = report.revocations.keys.map((key) => key.keyId);
	if (withHistory) view.history = { minutes: seriesView(minutes), days: seriesView(report.history.days) };
	return view;
}

function seriesView(series: HistorySeries): SeriesView {
	return {
		start: iso(series.start),
		step_seconds: series.stepMs / 1000,
		admitted: series.admitted,
		refused: series.refused,
		input_tokens: series.inputTokens,
		cache_read_input_tokens: series.cacheReadTokens,
		cache_creation_input_tokens: series.cacheWriteTokens,
		output_tokens: series.outputTokens,
		spend_usd: series.spendNanos.map(usd),
	};
}

function iso(at: number): string {
	return new Date(at).toISOString();
}

function sum(values: readonly number[]): number {
	return values.reduce((total, value) => total + value, 0);
}

function mapValues<T, U>(record: Record<string, T>, map: (value: T) => U): Record<string, U> {
	return Object.fromEntries(Object.entries(record).map(([key, value]) => [key, map(value)]));
}
