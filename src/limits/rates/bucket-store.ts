import type { AccelerationConfig, Cost, LimitStatus, PoolCorrection, RateLimitSnapshot } from "../decisions";
import * as meter from "./acceleration";
import { type BucketSpec, COST_FIELD, type Dimension, type Hit, moreRestrictive, specsFor, worse } from "./bucket-specs";
import * as bucket from "./token-bucket";

/** Untouched this long, every bucket is full again, even one at the deepest debt. */
export const MIN_IDLE_MS = (bucket.MAX_DEBT_MINUTES + 1) * bucket.MINUTE_MS;

/** Rows per upsert: three bound values each, under SQLite's 100 bound parameters a statement in Durable Objects. */
const ROWS_PER_WRITE = 33;

/**
 * One organisation's token buckets (its pool, its model families' pools, its workspaces') and its
 * acceleration meter, in its usage object's SQLite: read once, then kept in memory; the buckets a
 * call changed are written by {@link BucketStore.flush}, in one statement, before the call answers
 * (the object's output gate holds its answer until the write is durable). Every method runs
 * without awaiting. Once untouched for
 * {@link BucketStore.idleMs} they equal a fresh object's (buckets full, meter decayed below 1%),
 * so the object may {@link BucketStore.clear} them.
 */
export class BucketStore {
	#buckets = new Map<string, bucket.BucketState>();
	#meter: meter.MeterState | undefined;
	#idleMs = MIN_IDLE_MS;
	/** Buckets changed since the last flush, and whether the meter was. */
	#dirty = new Set<string>();
	#meterDirty = false;
	#flushQueued = false;

	constructor(private readonly sql: SqlStorage) {}

	/** Creates the tables if need be and reads every bucket and the meter; answers when one was last written (0: none). */
	load(): number {
		let lastWrite = 0;
		this.sql.exec("CREATE TABLE IF NOT EXISTS buckets (key TEXT PRIMARY KEY, level INTEGER NOT NULL, at INTEGER NOT NULL)");
		this.sql.exec(
			"CREATE TABLE IF NOT EXISTS meter (id INTEGER PRIMARY KEY CHECK (id = 1), short_rate REAL NOT NULL, baseline_rate REAL NOT NULL, at INTEGER NOT NULL, idle_ms INTEGER NOT NULL)",
		);
		for (const row of this.sql.exec<{ key: string; level: number; at: number }>("SELECT key, level, at FROM buckets")) {
			this.#buckets.set(row.key, { level: row.level, at: row.at });
			lastWrite = Math.max(lastWrite, row.at);
		}
		for (const row of this.sql.exec<{ short_rate: number; baseline_rate: number; at: number; idle_ms: number }>(
			"SELECT short_rate, baseline_rate, at, idle_ms FROM meter",
		)) {
			this.#meter = { shortRate: row.short_rate, baselineRate: row.baseline_rate, at: row.at };
			this.#idleMs = row.idle_ms;
			lastWrite = Math.max(lastWrite, row.at);
		}
		return lastWrite;
	}

	/** How long untouched until the buckets and the meter equal a fresh object's (longer for a slow baseline). */
	get idleMs(): number {
		return this.#idleMs;
	}

	/** Whether any bucket or the meter is held. */
	get held(): boolean {
		return this.#buckets.size > 0 || this.#meter !== undefined;
	}

	/** The limit `cost` would pass, if any (the one that decides the retry): every bucket's, then the meter's for a request. */
	check(specs: readonly BucketSpec[], cost: Cost, acceleration: AccelerationConfig | undefined, now: number): Hit | undefined {
		let worst = this.checkUnits(specs, (spec) => cost[COST_FIELD[spec.dimension]], now);
		if (acceleration !== undefined && cost.requests > 0) {
			const wait = meter.waitFor(this.#meter, acceleration, now);
			if (wait !== 0) {
				const allowedPerMinute = meter.allowedRate(this.#meter, acceleration, now);
				worst = worse(worst, { limit: "acceleration", scope: "organization", allowedPerMinute, wait });
			}
		}
		return worst;
	}

	/** The bucket that taking `units(spec)` from each would pass, if any (the one that decides the retry). */
	checkUnits(specs: readonly BucketSpec[], units: (spec: BucketSpec) => number, now: number): Hit | undefined {
		let worst: Hit | undefined;
		for (const spec of specs) {
			const wait = bucket.waitFor(this.#buckets.get(spec.key), spec.perMinute, units(spec), now);
			if (wait !== 0) worst = worse(worst, { limit: spec.dimension, scope: spec.scope, allowedPerMinute: spec.perMinute, wait, family: spec.family });
		}
		return worst;
	}

	/** Takes `cost` from every bucket (signed), counts admitted requests on the meter when `acceleration` is given; written at the next flush. */
	charge(specs: readonly BucketSpec[], cost: Cost, acceleration: AccelerationConfig | undefined, now: number): void {
		for (const spec of specs) {
			const units = cost[COST_FIELD[spec.dimension]];
			// Taking nothing changes nothing: the arithmetic is exact, so no write is needed.
			if (units !== 0) this.take(spec, units, now);
		}
		if (acceleration !== undefined && cost.requests > 0) {
			this.#meter = meter.record(this.#meter, acceleration, now, cost.requests);
			this.#idleMs = Math.max(MIN_IDLE_MS, Math.ceil(5 * acceleration.baselineMs));
			this.#meterDirty = true;
			this.#queueFlush();
		}
	}

	/** Applies signed corrections to several pools at once, netted per bucket (a workspace's is shared). */
	correct(corrections: readonly PoolCorrection[], now: number): void {
		const net = new Map<string, { spec: BucketSpec; units: number }>();
		for (const correction of corrections) {
			for (const spec of specsFor(correction.limits)) {
				const units = correction[COST_FIELD[spec.dimension]];
				if (units === 0) continue;
				const entry = net.get(spec.key) ?? { spec, units: 0 };
				entry.units += units;
				net.set(spec.key, entry);
			}
		}
		for (const { spec, units } of net.values()) if (units !== 0) this.take(spec, units, now);
	}

	/** Takes `units` (signed) from one bucket; written at the next {@link BucketStore.flush}. */
	take(spec: BucketSpec, units: number, now: number): void {
		const next = bucket.take(this.#buckets.get(spec.key), spec.perMinute, units, now);
		this.#buckets.set(spec.key, next);
		this.#dirty.add(spec.key);
		this.#queueFlush();
	}

	/**
	 * Writes the buckets and the meter changed since the last flush: one upsert per 33 buckets
	 * instead of one per bucket per change (a charge touches each dimension of each scope). The
	 * object calls it before every answer; a change it misses is written at the end of the same
	 * turn, before any other call runs.
	 */
	flush(): void {
		if (this.#dirty.size > 0) {
			const rows = [...this.#dirty];
			this.#dirty.clear();
			for (let start = 0; start < rows.length; start += ROWS_PER_WRITE) {
				const slice = rows.slice(start, start + ROWS_PER_WRITE);
				const values: (string | number)[] = [];
				for (const key of slice) {
					const state = this.#buckets.get(key);
					if (state !== undefined) values.push(key, state.level, state.at);
				}
				if (values.length === 0) continue;
				this.sql.exec(
					`INSERT INTO buckets (key, level, at) VALUES ${Array.from({ length: values.length / 3 }, () => "(?, ?, ?)").join(", ")} ON CONFLICT (key) DO UPDATE SET level = excluded.level, at = excluded.at`,
					...values,
				);
			}
		}
		if (this.#meterDirty && this.#meter !== undefined) {
			this.sql.exec(
				"INSERT INTO meter (id, short_rate, baseline_rate, at, idle_ms) VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET short_rate = excluded.short_rate, baseline_rate = excluded.baseline_rate, at = excluded.at, idle_ms = excluded.idle_ms",
				this.#meter.shortRate,
				this.#meter.baselineRate,
				this.#meter.at,
				this.#idleMs,
			);
		}
		this.#meterDirty = false;
	}

	// A backstop for a caller that does not flush: still within the turn, so no other call sees the state unwritten.
	#queueFlush(): void {
		if (this.#flushQueued) return;
		this.#flushQueued = true;
		queueMicrotask(() => {
			this.#flushQueued = false;
			this.flush();
		});
	}

	/** Whole units one bucket has available now. */
	available(spec: BucketSpec, now: number): number {
		return bucket.available(this.#buckets.get(spec.key), spec.perMinute, now);
	}

	/** Requests the meter would admit now. */
	headroom(acceleration: AccelerationConfig, now: number): number {
		return meter.headroom(this.#meter, acceleration, now);
	}

	/** The header values of these buckets now: the strictest of each dimension. */
	snapshot(specs: readonly BucketSpec[], now: number): RateLimitSnapshot {
		const strictest = (dimension: Dimension): LimitStatus => {
			let result: LimitStatus | undefined;
			for (const spec of specs) {
				if (spec.dimension !== dimension) continue;
				const current = bucket.status(this.#buckets.get(spec.key), spec.perMinute, now);
				result = result === undefined ? current : moreRestrictive(result, current);
			}
			if (result === undefined) throw new Error(`no ${dimension} bucket`);
			return result;
		};
		const inputTokens = strictest("input_tokens");
		const outputTokens = strictest("output_tokens");
		return { requests: strictest("requests"), inputTokens, outputTokens, tokens: moreRestrictive(inputTokens, outputTokens) };
	}

	/** Forgets every bucket and the meter, stored rows included (once idle, they equal a fresh object's). */
	clear(): void {
		this.sql.exec("DELETE FROM buckets");
		this.sql.exec("DELETE FROM meter");
		this.#dirty.clear();
		this.#meterDirty = false;
		this.#buckets = new Map();
		this.#meter = undefined;
		this.#idleMs = MIN_IDLE_MS;
	}
}
