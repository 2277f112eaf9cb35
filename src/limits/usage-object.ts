import { DurableObject } from "cloudflare:workers";
import * as meter from "./acceleration";
import { type BucketSpec, COST_FIELD, checkedCost, checkedDelta, type Dimension, type Hit, moreRestrictive, specsFor, worse } from "./bucket-specs";
import {
	type Cost,
	type Decision,
	type LeaseDecision,
	type LeaseRequest,
	type LimitStatus,
	MAX_LEASE_TTL_MS,
	type ObjectAdmitRequest,
	type ObjectSettleRequest,
	type RateLimitSnapshot,
	type Rejection,
	type ResolvedLimits,
} from "./limiter";
import * as bucket from "./token-bucket";

/** Untouched this long, every bucket is full again, even one at the deepest debt. */
const MIN_IDLE_MS = (bucket.MAX_DEBT_MINUTES + 1) * bucket.MINUTE_MS;

/**
 * One organisation's usage (`idFromName(orgId)`), in its own SQLite database: token buckets for
 * the organisation and its workspaces, and the acceleration meter. Every RPC method runs to the
 * end without awaiting, so each check-then-charge is atomic and concurrent calls are exact. The
 * in-memory copy is loaded once per instance and written through, so the state survives eviction
 * and restarts. An alarm deletes everything after `idleMs` untouched (by then the state equals a
 * fresh object's: buckets full, meter decayed below 1%).
 */
export class UsageObject extends DurableObject {
	/**
	 * The object's clock (epoch ms). A test seam, set through `runInDurableObject`; instance
	 * properties are not reachable over RPC, so callers cannot change it.
	 */
	clock: () => number = Date.now;

	#loaded = false;
	#alarmSet = false;
	#buckets = new Map<string, bucket.BucketState>();
	#meter: meter.MeterState | undefined;
	#idleMs = MIN_IDLE_MS;
	#lastActivity = 0;

	/** Checks `cost` against every limit, then charges all of it, or nothing. */
	admit(request: ObjectAdmitRequest): Decision {
		const cost = checkedCost(request.cost, "cost");
		this.#load();
		const now = this.clock();
		const specs = specsFor(request.limits);
		const hit = this.#check(specs, cost, request.limits, now);
		if (hit !== undefined) return this.#reject(hit, specs, now);
		this.#charge(specs, cost, request.limits, now);
		const workspaceId = request.limits.workspace?.id;
		return {
			admitted: true,
			reservation: { orgId: request.orgId, workspaceId, inputTokens: cost.inputTokens, outputTokens: cost.outputTokens, via: "object" },
			snapshot: this.#snapshot(specs, now),
			source: "object",
		};
	}

	/** Applies signed corrections to the token buckets (more usage than charged debits, less credits). */
	settle(request: ObjectSettleRequest): void {
		const input = checkedDelta(request.inputTokens, "inputTokens");
		const output = checkedDelta(request.outputTokens, "outputTokens");
		const requests = checkedDelta(request.requests ?? 0, "requests");
		this.#load();
		const now = this.clock();
		this.#charge(specsFor(request.limits), { requests, inputTokens: input, outputTokens: output }, undefined, now);
	}

	/**
	 * Credits what the isolate returns and owes, then grants as much of `want` as every limit has
	 * available now (at least `need`, or a rejection), charged at once.
	 */
	lease(request: LeaseRequest): LeaseDecision {
		const need = checkedCost(request.need, "need");
		const want = checkedCost(request.want, "want");
		const returned = checkedCost({ ...request.returned, outputTokens: 0 }, "returned");
		const owed = {
			requests: -returned.requests,
			inputTokens: checkedDelta(request.usage.inputTokens, "usage.inputTokens") - returned.inputTokens,
			outputTokens: checkedDelta(request.usage.outputTokens, "usage.outputTokens"),
		};
		this.#load();
		const now = this.clock();
		const specs = specsFor(request.limits);
		if (owed.requests !== 0 || owed.inputTokens !== 0 || owed.outputTokens !== 0) this.#charge(specs, owed, undefined, now);
		const hit = this.#check(specs, need, request.limits, now);
		if (hit !== undefined) return this.#reject(hit, specs, now);
		const grant = (dimension: Dimension, ceiling: number): number => {
			const field = COST_FIELD[dimension];
			let units = Math.min(want[field], ceiling);
			for (const spec of specs) {
				if (spec.dimension === dimension) units = Math.min(units, bucket.available(this.#buckets.get(spec.key), spec.perMinute, now));
			}
			return Math.max(need[field], units);
		};
		const acceleration = request.limits.acceleration;
		const room = acceleration === undefined ? Number.POSITIVE_INFINITY : meter.headroom(this.#meter, acceleration, now);
		const units = { requests: grant("requests", room), inputTokens: grant("input_tokens", Number.POSITIVE_INFINITY), outputTokens: need.outputTokens };
		this.#charge(specs, units, request.limits, now);
		const ttlMs = Math.min(MAX_LEASE_TTL_MS, Math.max(1, Math.floor(request.ttlMs)));
		return { admitted: true, units, ttlMs, snapshot: this.#snapshot(specs, now) };
	}

	/** Deletes the state once idle; otherwise looks again when it would be. */
	override async alarm(): Promise<void> {
		this.#load();
		this.#alarmSet = false;
		if (this.#buckets.size === 0 && this.#meter === undefined) return;
		const idleFor = this.clock() - this.#lastActivity;
		if (idleFor >= this.#idleMs) {
			await this.ctx.storage.deleteAll();
			this.#loaded = false;
			this.#buckets = new Map();
			this.#meter = undefined;
			this.#idleMs = MIN_IDLE_MS;
			this.#lastActivity = 0;
			return;
		}
		// Scheduled by duration on the real clock, so a test clock can never make alarms loop.
		this.#alarmSet = true;
		await this.ctx.storage.setAlarm(Date.now() + (this.#idleMs - idleFor));
	}

	#load(): void {
		if (this.#loaded) return;
		const sql = this.ctx.storage.sql;
		sql.exec("CREATE TABLE IF NOT EXISTS buckets (key TEXT PRIMARY KEY, level INTEGER NOT NULL, at INTEGER NOT NULL)");
		sql.exec(
			"CREATE TABLE IF NOT EXISTS meter (id INTEGER PRIMARY KEY CHECK (id = 1), short_rate REAL NOT NULL, baseline_rate REAL NOT NULL, at INTEGER NOT NULL, idle_ms INTEGER NOT NULL)",
		);
		for (const row of sql.exec<{ key: string; level: number; at: number }>("SELECT key, level, at FROM buckets")) {
			this.#buckets.set(row.key, { level: row.level, at: row.at });
			this.#lastActivity = Math.max(this.#lastActivity, row.at);
		}
		for (const row of sql.exec<{ short_rate: number; baseline_rate: number; at: number; idle_ms: number }>(
			"SELECT short_rate, baseline_rate, at, idle_ms FROM meter",
		)) {
			this.#meter = { shortRate: row.short_rate, baselineRate: row.baseline_rate, at: row.at };
			this.#idleMs = row.idle_ms;
			this.#lastActivity = Math.max(this.#lastActivity, row.at);
		}
		this.#loaded = true;
	}

	#check(specs: readonly BucketSpec[], cost: Cost, limits: ResolvedLimits, now: number): Hit | undefined {
		let worst: Hit | undefined;
		for (const spec of specs) {
			const wait = bucket.waitFor(this.#buckets.get(spec.key), spec.perMinute, cost[COST_FIELD[spec.dimension]], now);
			if (wait !== 0) worst = worse(worst, { limit: spec.dimension, scope: spec.scope, allowedPerMinute: spec.perMinute, wait });
		}
		const acceleration = limits.acceleration;
		if (acceleration !== undefined && cost.requests > 0) {
			const wait = meter.waitFor(this.#meter, acceleration, now);
			if (wait !== 0) {
				const allowedPerMinute = meter.allowedRate(this.#meter, acceleration, now);
				worst = worse(worst, { limit: "acceleration", scope: "organization", allowedPerMinute, wait });
			}
		}
		return worst;
	}

	#reject(hit: Hit, specs: readonly BucketSpec[], now: number): Rejection {
		return {
			admitted: false,
			limit: hit.limit,
			scope: hit.scope,
			allowedPerMinute: hit.allowedPerMinute,
			retryAfterMs: hit.wait,
			snapshot: this.#snapshot(specs, now),
			source: "object",
		};
	}

	/** Takes `cost` from every bucket (signed), counts admitted requests when `limits` says to, writes through. */
	#charge(specs: readonly BucketSpec[], cost: Cost, limits: ResolvedLimits | undefined, now: number): void {
		const sql = this.ctx.storage.sql;
		for (const spec of specs) {
			const units = cost[COST_FIELD[spec.dimension]];
			// Taking nothing changes nothing: the arithmetic is exact, so no write is needed.
			if (units === 0) continue;
			const next = bucket.take(this.#buckets.get(spec.key), spec.perMinute, units, now);
			this.#buckets.set(spec.key, next);
			sql.exec(
				"INSERT INTO buckets (key, level, at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET level = excluded.level, at = excluded.at",
				spec.key,
				next.level,
				next.at,
			);
		}
		const acceleration = limits?.acceleration;
		if (acceleration !== undefined && cost.requests > 0) {
			this.#meter = meter.record(this.#meter, acceleration, now, cost.requests);
			this.#idleMs = Math.max(MIN_IDLE_MS, Math.ceil(5 * acceleration.baselineMs));
			sql.exec(
				"INSERT INTO meter (id, short_rate, baseline_rate, at, idle_ms) VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET short_rate = excluded.short_rate, baseline_rate = excluded.baseline_rate, at = excluded.at, idle_ms = excluded.idle_ms",
				this.#meter.shortRate,
				this.#meter.baselineRate,
				this.#meter.at,
				this.#idleMs,
			);
		}
		this.#lastActivity = Math.max(this.#lastActivity, now);
		if (!this.#alarmSet) {
			this.#alarmSet = true;
			void this.ctx.storage.setAlarm(Date.now() + this.#idleMs);
		}
	}

	#snapshot(specs: readonly BucketSpec[], now: number): RateLimitSnapshot {
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
}
