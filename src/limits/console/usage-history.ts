/**
 * An organisation's usage history, in its usage object's SQLite: per minute for the last 24 hours
 * and per day for the last 90 days, the requests admitted, the requests refused by reason, the
 * input, cache and output tokens, the spend, and the last refusal's request ID. Bounded: at most
 * 1,440 minute rows and 90 day rows (plus one row per reason and period), pruned by the object's
 * alarm. Written on the object calls that already exist; never an extra call on the request path.
 */

export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;
/** Minutes kept (24 hours) and days kept. */
export const MINUTES_KEPT = 1440;
export const DAYS_KEPT = 90;

/** What happened in one minute, as a usage object or an isolate counted it. */
export interface HistoryEntry {
	/** Start of the minute, epoch ms (a multiple of {@link MINUTE_MS}). */
	readonly minute: number;
	readonly admitted?: number;
	/** Refusals by reason (`requests`, `input_tokens`, `budget`, `share`, `revoked_key`, ...). */
	readonly refused?: Readonly<Record<string, number>>;
	readonly inputTokens?: number;
	readonly cacheReadTokens?: number;
	readonly cacheWriteTokens?: number;
	readonly outputTokens?: number;
	readonly spendNanos?: number;
	/** The latest refusal in the minute that has a request ID. */
	readonly lastRefusal?: LastRefusal;
}

/** The most recent refusal: its request ID (for support), why, and when (epoch ms). */
export interface LastRefusal {
	readonly requestId: string;
	readonly reason: string;
	readonly at: number;
}

/** A dense series of one span (minutes or days), oldest first, one value per step. */
export interface HistorySeries {
	/** Start of the first step, epoch ms. */
	readonly start: number;
	readonly stepMs: number;
	readonly admitted: number[];
	/** One series per reason seen in the window. */
	readonly refused: Record<string, number[]>;
	readonly inputTokens: number[];
	readonly cacheReadTokens: number[];
	readonly cacheWriteTokens: number[];
	readonly outputTokens: number[];
	readonly spendNanos: number[];
}

/** What {@link UsageHistory.read} answers. */
export interface HistoryView {
	readonly minutes: HistorySeries;
	readonly days: HistorySeries;
	readonly lastRefusal: LastRefusal | null;
}

type Span = "m" | "d";
const COUNTERS = ["admitted", "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "spend_nanos"] as const;
const REASON = /^[A-Za-z0-9_.:() -]{1,64}$/;
const REQUEST_ID = /^req_[0-9A-Za-z]{1,64}$/;

/** The start of the minute and of the UTC day that hold `at`. */
export function minuteOf(at: number): number {
	return Math.floor(at / MINUTE_MS) * MINUTE_MS;
}
function dayOf(at: number): number {
	return Math.floor(at / DAY_MS) * DAY_MS;
}

/** The history tables of one usage object. Every method runs without awaiting. */
export class UsageHistory {
	#ready = false;
	/** Counts recorded and not yet written, by minute. */
	readonly #pending = new Map<number, { counts: number[]; refused: Map<string, number>; last: LastRefusal | undefined }>();
	#flushQueued = false;

	constructor(private readonly sql: SqlStorage) {}

	/**
	 * Adds one minute's counts to its minute row and its day row. Bad numbers are dropped, never
	 * stored. The counts a call brings are summed in memory and written by {@link UsageHistory.flush},
	 * one statement per minute, before the call answers.
	 */
	record(entry: HistoryEntry): void {
		const minute = minuteOf(entry.minute);
		let pending = this.#pending.get(minute);
		if (pending === undefined) {
			pending = { counts: COUNTERS.map(() => 0), refused: new Map(), last: undefined };
			this.#pending.set(minute, pending);
		}
		const values = [entry.admitted, entry.inputTokens, entry.cacheReadTokens, entry.cacheWriteTokens, entry.outputTokens, entry.spendNanos];
		for (const [i, value] of values.entries()) pending.counts[i] = Math.min(Number.MAX_SAFE_INTEGER, (pending.counts[i] ?? 0) + count(value));
		const last = entry.lastRefusal !== undefined && validRefusal(entry.lastRefusal) ? entry.lastRefusal : undefined;
		if (last !== undefined && (pending.last === undefined || last.at >= pending.last.at)) pending.last = last;
		for (const [reason, times] of Object.entries(entry.refused ?? {})) {
			const n = count(times);
			if (n === 0 || !REASON.test(reason)) continue;
			pending.refused.set(reason, Math.min(Number.MAX_SAFE_INTEGER, (pending.refused.get(reason) ?? 0) + n));
		}
		if (!this.#flushQueued) {
			this.#flushQueued = true;
			// A backstop for a caller that does not flush: still within the turn.
			queueMicrotask(() => {
				this.#flushQueued = false;
				this.flush();
			});
		}
	}

	/** Writes the counts recorded since the last flush. */
	flush(): void {
		if (this.#pending.size === 0) return;
		this.#tables();
		const pending = [...this.#pending];
		this.#pending.clear();
		for (const [minute, { counts, refused, last }] of pending) {
			const day = dayOf(minute);
			if (counts.some((value) => value !== 0) || last !== undefined) {
				const lastValues = [last?.requestId ?? null, last?.reason ?? null, last?.at ?? null];
				this.sql.exec(
					`INSERT INTO history (span, at, ${COUNTERS.join(", ")}, last_refusal_id, last_refusal_reason, last_refusal_at)
					 VALUES ('m', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?), ('d', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
					 ON CONFLICT (span, at) DO UPDATE SET ${COUNTERS.map((name) => `${name} = ${name} + excluded.${name}`).join(", ")},
					 last_refusal_id = CASE WHEN excluded.last_refusal_at >= COALESCE(last_refusal_at, 0) THEN excluded.last_refusal_id ELSE last_refusal_id END,
					 last_refusal_reason = CASE WHEN excluded.last_refusal_at >= COALESCE(last_refusal_at, 0) THEN excluded.last_refusal_reason ELSE last_refusal_reason END,
					 last_refusal_at = MAX(COALESCE(last_refusal_at, 0), COALESCE(excluded.last_refusal_at, 0))`,
					minute,
					...counts,
					...lastValues,
					day,
					...counts,
					...lastValues,
				);
			}
			for (const [reason, n] of refused) {
				this.sql.exec(
					"INSERT INTO history_refusals (span, at, reason, count) VALUES ('m', ?, ?, ?), ('d', ?, ?, ?) ON CONFLICT (span, at, reason) DO UPDATE SET count = count + excluded.count",
					minute,
					reason,
					n,
					day,
					reason,
					n,
				);
			}
		}
	}

	/** The last `minutes` minutes (at most 1,440) and `days` days (at most 90) up to `now`, dense. */
	read(now: number, minutes: number, days: number): HistoryView {
		this.flush();
		this.#tables();
		const minuteCount = clampWhole(minutes, 1, MINUTES_KEPT);
		const dayCount = clampWhole(days, 1, DAYS_KEPT);
		const lastRow = [
			...this.sql.exec<{ id: string; reason: string; at: number }>(
				"SELECT last_refusal_id AS id, last_refusal_reason AS reason, last_refusal_at AS at FROM history WHERE span = 'd' AND last_refusal_id IS NOT NULL ORDER BY last_refusal_at DESC LIMIT 1",
			),
		][0];
		return {
			minutes: this.#series("m", minuteOf(now) - (minuteCount - 1) * MINUTE_MS, MINUTE_MS, minuteCount),
			days: this.#series("d", dayOf(now) - (dayCount - 1) * DAY_MS, DAY_MS, dayCount),
			lastRefusal: lastRow === undefined ? null : { requestId: lastRow.id, reason: lastRow.reason, at: lastRow.at },
		};
	}

	/**
	 * Deletes minutes older than 24 hours and days older than 90; answers when the next row will
	 * be due (epoch ms), or `undefined` when no history is left.
	 */
	prune(now: number): number | undefined {
		this.flush();
		this.#tables();
		const minuteFloor = minuteOf(now) - (MINUTES_KEPT - 1) * MINUTE_MS;
		const dayFloor = dayOf(now) - (DAYS_KEPT - 1) * DAY_MS;
		for (const table of ["history", "history_refusals"]) {
			this.sql.exec(`DELETE FROM ${table} WHERE (span = 'm' AND at < ?) OR (span = 'd' AND at < ?)`, minuteFloor, dayFloor);
		}
		const oldest = (span: Span) =>
			[
				...this.sql.exec<{ at: number | null }>(
					"SELECT MIN(at) AS at FROM (SELECT at FROM history WHERE span = ? UNION ALL SELECT at FROM history_refusals WHERE span = ?)",
					span,
					span,
				),
			][0]?.at ?? null;
		const minute = oldest("m");
		const day = oldest("d");
		const due = [minute === null ? undefined : minute + MINUTES_KEPT * MINUTE_MS, day === null ? undefined : day + DAYS_KEPT * DAY_MS].filter(
			(at): at is number => at !== undefined,
		);
		return due.length === 0 ? undefined : Math.min(...due);
	}

	/** Forgets that the tables exist (after the object's storage was deleted). */
	reset(): void {
		this.#ready = false;
	}

	#series(span: Span, start: number, stepMs: number, steps: number): HistorySeries {
		const zeros = () => new Array<number>(steps).fill(0);
		const series = {
			start,
			stepMs,
			admitted: zeros(),
			refused: {} as Record<string, number[]>,
			inputTokens: zeros(),
			cacheReadTokens: zeros(),
			cacheWriteTokens: zeros(),
			outputTokens: zeros(),
			spendNanos: zeros(),
		};
		const slot = (at: number) => Math.round((at - start) / stepMs);
		for (const row of this.sql.exec<Record<(typeof COUNTERS)[number] | "at", number>>(
			`SELECT at, ${COUNTERS.join(", ")} FROM history WHERE span = ? AND at >= ?`,
			span,
			start,
		)) {
			const i = slot(row.at);
			if (i < 0 || i >= steps) continue;
			series.admitted[i] = row.admitted;
			series.inputTokens[i] = row.input_tokens;
			series.cacheReadTokens[i] = row.cache_read_tokens;
			series.cacheWriteTokens[i] = row.cache_write_tokens;
			series.outputTokens[i] = row.output_tokens;
			series.spendNanos[i] = row.spend_nanos;
		}
		for (const row of this.sql.exec<{ at: number; reason: string; count: number }>(
			"SELECT at, reason, count FROM history_refusals WHERE span = ? AND at >= ?",
			span,
			start,
		)) {
			const i = slot(row.at);
			if (i < 0 || i >= steps) continue;
			series.refused[row.reason] ??= zeros();
			(series.refused[row.reason] as number[])[i] = row.count;
		}
		return series;
	}

	#tables(): void {
		if (this.#ready) return;
		this.sql.exec(
			`CREATE TABLE IF NOT EXISTS history (span TEXT NOT NULL, at INTEGER NOT NULL, ${COUNTERS.map((name) => `${name} INTEGER NOT NULL DEFAULT 0`).join(", ")}, last_refusal_id TEXT, last_refusal_reason TEXT, last_refusal_at INTEGER, PRIMARY KEY (span, at))`,
		);
		this.sql.exec(
			"CREATE TABLE IF NOT EXISTS history_refusals (span TEXT NOT NULL, at INTEGER NOT NULL, reason TEXT NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (span, at, reason))",
		);
		this.#ready = true;
	}
}

/** A count from an isolate: a whole number of at least 0 (anything else counts as nothing). */
function count(value: number | undefined): number {
	return typeof value === "number" && Number.isSafeInteger(value) && value > 0 ? value : 0;
}

function validRefusal(refusal: LastRefusal): boolean {
	return REQUEST_ID.test(refusal.requestId) && REASON.test(refusal.reason) && Number.isSafeInteger(refusal.at);
}

function clampWhole(value: number, min: number, max: number): number {
	return Number.isFinite(value) ? Math.min(max, Math.max(min, Math.floor(value))) : max;
}
