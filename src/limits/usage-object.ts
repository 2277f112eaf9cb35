import { DurableObject } from "cloudflare:workers";
import * as meter from "./acceleration";
import { type BucketSpec, COST_FIELD, checkedCost, checkedDelta, type Dimension, type Hit, moreRestrictive, specsFor, worse } from "./bucket-specs";
import {
	type Cost,
	type Decision,
	type GrowDecision,
	type LeaseDecision,
	type ObjectGrowRequest,
	type ObjectSettleClaimRequest,
	type SettleClaimResult,
	type LeaseRequest,
	type LimitStatus,
	MAX_LEASE_TTL_MS,
	type ObjectAdmitRequest,
	type ObjectSettleRequest,
	type PoolCorrection,
	type RateLimitSnapshot,
	type Rejection,
	type ResolvedLimits,
	type SettleResult,
	type SpendCharge,
} from "./limiter";
import type { ConsoleDownlink } from "./console-link";
import { ObjectConsole, type ObjectConsoleReport } from "./object-console";
import type { RevocationList } from "./revocations";
import type { BudgetHit } from "./spend";
import { SpendLedger, type SpendLine } from "./spend-ledger";
import * as bucket from "./token-bucket";
import { batchClaimId, CLAIM_TTL_MS, ClaimBook, type ClaimsSummary } from "./claims/claim-book";

/** Untouched this long, every bucket is full again, even one at the deepest debt. */
const MIN_IDLE_MS = (bucket.MAX_DEBT_MINUTES + 1) * bucket.MINUTE_MS;

/**
 * One organisation's usage (`idFromName(orgId)`), in its own SQLite database: token buckets for
 * the organisation, its model families' pools and its workspaces, the acceleration meter, and the
 * spend of the organisation, its workspaces and keys per UTC day and month. Every RPC method runs
 * to the end without awaiting, so each check-then-charge is atomic and concurrent calls are exact.
 * The in-memory copy is loaded once per instance and written through, so the state survives
 * eviction and restarts. An alarm deletes the buckets and meter after `idleMs` untouched (by then
 * they equal a fresh object's: buckets full, meter decayed below 1%), and spend once its period
 * has turned.
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
	#spend: SpendLedger | undefined;
	#claims: ClaimBook | undefined;
	#console: ObjectConsole | undefined;

	/**
	 * Checks `cost` against every limit, then charges all of it, or nothing. A spent budget of the
	 * organisation, the workspace or the key refuses the request before any bucket is looked at.
	 */
	#admit(request: ObjectAdmitRequest): Decision {
		const cost = checkedCost(request.cost, "cost");
		const terms = request.claim;
		const nanos = terms === undefined ? 0 : checkedNanos(terms.nanos, "claim.nanos");
		const ledger = this.#load();
		const claims = this.#claimBook();
		const now = this.clock();
		const pools = [request.limits, ...(terms?.pools ?? [])];
		const specs = specsOfPools(pools);
		const spent = ledger.check(request.limits.budgets, request.workspaceId, request.keyId, now, { nanos, held: (scope) => claims.heldNanos(scope) });
		if (spent !== undefined) return this.#overBudget(spent, specsFor(request.limits), now);
		const hit = this.#check(specs, cost, request.limits, now);
		if (hit !== undefined) return this.#reject(hit, specsFor(request.limits), now);
		this.#charge(specs, cost, request.limits, now);
		if (terms !== undefined) {
			const taken: Record<string, number> = {};
			for (const spec of specs) taken[spec.key] = cost[COST_FIELD[spec.dimension]];
			claims.put({
				id: claimId(terms.id),
				taken,
				pools,
				nanos,
				requests: cost.requests,
				inputTokens: cost.inputTokens,
				outputTokens: cost.outputTokens,
				workspaceId: request.workspaceId,
				keyId: request.keyId,
				expiresAt: now + CLAIM_TTL_MS,
			});
			this.#touched(now);
		}
		const workspaceId = request.limits.workspace?.id;
		const family = request.limits.pool?.family;
		return {
			admitted: true,
			reservation: {
				orgId: request.orgId,
				workspaceId,
				inputTokens: cost.inputTokens,
				outputTokens: cost.outputTokens,
				via: "object",
				keyId: request.keyId,
				family,
				...(terms === undefined ? {} : { claimId: terms.id }),
			},
			snapshot: this.#snapshot(specsFor(request.limits), now),
			source: "object",
			family,
		};
	}

	/**
	 * Grows a claim by `cost` and `nanos` if every bucket of its pool and every budget has room, or
	 * refuses and leaves it as it was. With `pool` (the request's model is known now), the claim
	 * first lands in that pool: a claim held in every pool leaves the others (their units given
	 * back); a claim held in another pool moves, and the pool it leaves keeps what it admitted
	 * while the new pool must take everything the claim holds.
	 */
	#grow(request: ObjectGrowRequest): GrowDecision {
		const cost = checkedCost(request.cost, "cost");
		const nanos = checkedNanos(request.nanos, "nanos");
		const ledger = this.#load();
		const claims = this.#claimBook();
		const now = this.clock();
		const claim = claims.get(String(request.claimId));
		if (claim === undefined) throw new RangeError(`no claim ${String(request.claimId).slice(0, 64)} is held (settled, or expired)`);
		const taken = { ...claim.taken };
		const kept = { ...(claim.kept ?? {}) };
		const released: [BucketSpec, number][] = [];
		let pools = claim.pools;
		let fresh = new Set<string>();
		const target = request.pool?.limits;
		if (target !== undefined) {
			const held = pools.find((pool) => samePool(pool, target));
			const next = held ?? target;
			const keys = new Set(specsFor(next).map((spec) => spec.key));
			for (const spec of specsOfPools(pools)) {
				if (keys.has(spec.key)) continue;
				const units = taken[spec.key] ?? 0;
				delete taken[spec.key];
				if (held !== undefined) released.push([spec, units]);
				else kept[spec.key] = (kept[spec.key] ?? 0) + units;
			}
			if (held === undefined) fresh = new Set([...keys].filter((key) => !(key in taken)));
			pools = [next];
		}
		const primary = pools[0] as ResolvedLimits;
		const specs = specsOfPools(pools);
		const totals: Cost = { requests: claim.requests, inputTokens: claim.inputTokens, outputTokens: claim.outputTokens };
		const unitsFor = (spec: BucketSpec) => (fresh.has(spec.key) ? totals[COST_FIELD[spec.dimension]] : 0) + cost[COST_FIELD[spec.dimension]];
		const spent = nanos > 0 ? ledger.check(primary.budgets, claim.workspaceId, claim.keyId, now, { nanos, held: (scope) => claims.heldNanos(scope) }) : undefined;
		if (spent !== undefined) return this.#overBudget(spent, specsFor(primary), now);
		let worst: Hit | undefined;
		for (const spec of specs) {
			const wait = bucket.waitFor(this.#buckets.get(spec.key), spec.perMinute, unitsFor(spec), now);
			if (wait !== 0) worst = worse(worst, { limit: spec.dimension, scope: spec.scope, allowedPerMinute: spec.perMinute, wait, family: spec.family });
		}
		if (worst !== undefined) return this.#reject(worst, specsFor(primary), now);
		for (const [spec, units] of released) if (units !== 0) this.#take(spec, -units, now);
		for (const spec of specs) {
			const units = unitsFor(spec);
			if (units !== 0) this.#take(spec, units, now);
			taken[spec.key] = (taken[spec.key] ?? 0) + units;
		}
		this.#touched(now);
		claims.put({
			...claim,
			taken,
			kept,
			pools,
			nanos: claim.nanos + nanos,
			requests: claim.requests + cost.requests,
			inputTokens: claim.inputTokens + cost.inputTokens,
			outputTokens: claim.outputTokens + cost.outputTokens,
		});
		return { admitted: true, snapshot: this.#snapshot(specsFor(primary), now) };
	}

	/**
	 * Replaces a claim with what was used, once: the pool the usage lands in gets the usage (a
	 * correction of what the claim took there), every other pool claimed gets its units back, except
	 * that a pool that admitted the request keeps what it admitted when the usage lands elsewhere;
	 * the money held is released and the cost added to the spend. A claim not held is not settled
	 * twice: the answer says so and nothing changes.
	 */
	#settleClaim(request: ObjectSettleClaimRequest): SettleClaimResult {
		const used = checkedCost(request.used, "used");
		const charges = checkedCharges(request.spend);
		const ledger = this.#load();
		const claims = this.#claimBook();
		const now = this.clock();
		const claim = claims.get(request.claimId);
		if (claim === undefined) return { settled: false, exhausted: ledger.exhausted(request.limits.budgets, request.limits.workspace?.id, now) };
		const target = specsFor(request.limits);
		const landsInClaim = claim.pools.some((pool) => samePool(pool, request.limits));
		const wanted = new Map<string, number>();
		for (const spec of target) wanted.set(spec.key, used[COST_FIELD[spec.dimension]]);
		if (!landsInClaim) {
			for (const [key, units] of Object.entries(claim.taken)) wanted.set(key, Math.max(wanted.get(key) ?? 0, units));
		}
		const all = new Map<string, BucketSpec>();
		for (const spec of [...specsOfPools(claim.pools), ...target]) all.set(spec.key, spec);
		for (const [key, spec] of all) {
			const kept = claim.taken[key] === undefined ? (claim.kept?.[key] ?? 0) : 0;
			// A pool the request moved out of keeps what it admitted, even when the usage lands back in it.
			const delta = Math.max(wanted.get(key) ?? 0, kept) - (claim.taken[key] ?? kept);
			if (delta !== 0) this.#take(spec, delta, now);
		}
		if (charges.length > 0) ledger.add(charges, request.limits.budgets, now);
		claims.settled(claim, charges.reduce((sum, charge) => sum + charge.nanos, 0));
		this.#touched(now);
		return { settled: true, exhausted: ledger.exhausted(request.limits.budgets, request.limits.workspace?.id, now) };
	}

	/** Claims whose isolate never settled them are settled as charged: their units stay taken, their money is spent. */
	#expireClaims(now: number): void {
		const claims = this.#claimBook();
		if ((claims.nextExpiry() ?? Number.POSITIVE_INFINITY) > now) return;
		const ledger = this.#load();
		for (const claim of claims.expired(now)) {
			const charge = claim.nanos > 0 ? [{ workspaceId: claim.workspaceId, keyId: claim.keyId, nanos: claim.nanos }] : [];
			if (charge.length > 0) ledger.add(charge, claim.pools[0]?.budgets, now);
			claims.settled(claim, claim.nanos);
		}
	}

	#claimBook(): ClaimBook {
		this.#load();
		if (this.#claims === undefined) throw new Error("the claim book was not loaded");
		return this.#claims;
	}

	/**
	 * Applies signed corrections to the token buckets (more usage than charged debits, less
	 * credits), netted across the pools named (a request moved from one family's pool to
	 * another's), adds the costs to the spend, and answers which budgets are spent now.
	 */
	#settle(request: ObjectSettleRequest): SettleResult {
		const first: PoolCorrection = {
			limits: request.limits,
			requests: checkedDelta(request.requests ?? 0, "requests"),
			inputTokens: checkedDelta(request.inputTokens, "inputTokens"),
			outputTokens: checkedDelta(request.outputTokens, "outputTokens"),
		};
		const moves = (request.moves ?? []).map((move, i) => ({
			limits: move.limits,
			requests: checkedDelta(move.requests, `moves[${i}].requests`),
			inputTokens: checkedDelta(move.inputTokens, `moves[${i}].inputTokens`),
			outputTokens: checkedDelta(move.outputTokens, `moves[${i}].outputTokens`),
		}));
		const returned = request.returned === undefined ? undefined : checkedCost({ outputTokens: 0, ...request.returned }, "returned");
		const charges = checkedCharges(request.spend);
		const ledger = this.#load();
		const now = this.clock();
		if (returned !== undefined) moves.push({ limits: request.limits, requests: -returned.requests, inputTokens: -returned.inputTokens, outputTokens: -returned.outputTokens });
		this.#correct([first, ...moves], now);
		if (charges.length > 0) {
			ledger.add(charges, request.limits.budgets, now);
			this.#touched(now);
		}
		return { exhausted: ledger.exhausted(request.limits.budgets, request.limits.workspace?.id, now) };
	}

	/** Every scope's spend in the current day and month, for `npm run keys -- usage`. */
	report(): SpendLine[] {
		return this.#load().report(this.clock());
	}

	/**
	 * Credits what the isolate returns and owes, then grants as much of `want` as every limit has
	 * available now (at least `need`, or a rejection), charged at once.
	 */
	#lease(request: LeaseRequest): LeaseDecision {
		const need = checkedCost(request.need, "need");
		const want = checkedCost(request.want, "want");
		const returned = checkedCost({ outputTokens: 0, ...request.returned }, "returned");
		const owed = {
			requests: checkedDelta(request.usage.requests ?? 0, "usage.requests") - returned.requests,
			inputTokens: checkedDelta(request.usage.inputTokens, "usage.inputTokens") - returned.inputTokens,
			outputTokens: checkedDelta(request.usage.outputTokens, "usage.outputTokens") - returned.outputTokens,
		};
		const charges = checkedCharges(request.spend);
		const ledger = this.#load();
		const now = this.clock();
		const specs = specsFor(request.limits);
		if (owed.requests !== 0 || owed.inputTokens !== 0 || owed.outputTokens !== 0) this.#charge(specs, owed, undefined, now);
		if (charges.length > 0) ledger.add(charges, request.limits.budgets, now);
		const spent = need.requests > 0 ? ledger.check(request.limits.budgets, request.workspaceId, request.keyId, now) : undefined;
		if (spent !== undefined) return this.#overBudget(spent, specs, now);
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
		const units = {
			requests: grant("requests", room),
			inputTokens: grant("input_tokens", Number.POSITIVE_INFINITY),
			outputTokens: grant("output_tokens", Number.POSITIVE_INFINITY),
		};
		this.#charge(specs, units, request.limits, now);
		const ttlMs = Math.min(MAX_LEASE_TTL_MS, Math.max(1, Math.floor(request.ttlMs)));
		const exhausted = ledger.exhausted(request.limits.budgets, request.limits.workspace?.id, now);
		return { admitted: true, units, ttlMs, snapshot: this.#snapshot(specs, now), ...(exhausted.length > 0 ? { exhausted } : {}) };
	}

	// --- The operator console (src/limits/object-console.ts): each call above also carries the
	// isolate's tally into the history and brings back the revocation list when it changed.

	/** {@link #admit}, counted in the history; a key on the revocation list is refused uncharged. */
	admit(request: ObjectAdmitRequest): Decision & { console?: ConsoleDownlink } {
		const now = this.clock();
		const desk = this.#consoleState();
		desk.hear(request, now);
		if (desk.revocations.has(request.keyId, now)) {
			desk.refusedRevoked(now);
			this.#touched(now);
			return desk.answer(request, this.#revokedKey(request.limits, now), now, true);
		}
		this.#expireClaims(now);
		const decision = this.#admit(request);
		desk.decided(decision, now);
		this.#touched(now);
		return desk.answer(request, decision, now);
	}

	/** {@link #settle}, with the isolate's tally. */
	settle(request: ObjectSettleRequest): SettleResult & { console?: ConsoleDownlink } {
		this.#heard(request);
		return this.#consoleState().answer(request, this.#settle(request), this.clock());
	}

	/** {@link #grow}, with the isolate's tally. */
	grow(request: ObjectGrowRequest): GrowDecision & { console?: ConsoleDownlink } {
		this.#heard(request);
		this.#expireClaims(this.clock());
		return this.#consoleState().answer(request, this.#grow(request), this.clock());
	}

	/** {@link #settleClaim}, with the isolate's tally. */
	settleClaim(request: ObjectSettleClaimRequest): SettleClaimResult & { console?: ConsoleDownlink } {
		this.#heard(request);
		return this.#consoleState().answer(request, this.#settleClaim(request), this.clock());
	}

	/**
	 * A created batch takes over its creation request's claim (`batch:<batchId>`): held against
	 * budgets and limits until its results are read through the guard, or charged when it expires.
	 */
	holdForBatch(request: { orgId: string; claimId: string; batchId: string }): { held: boolean } {
		this.#heard(request);
		const claims = this.#claimBook();
		const claim = claims.get(String(request.claimId));
		const batchId = String(request.batchId);
		if (claim === undefined || !/^[\x21-\x7e]{1,128}$/.test(batchId) || claims.get(batchClaimId(batchId)) !== undefined) return { held: false };
		claims.holdForBatch(claim, batchId, this.clock());
		return { held: true };
	}

	/** What the claims outstanding hold, and what settlements charged (the invariant tests read it). */
	claimsReport(): ClaimsSummary {
		this.#expireClaims(this.clock());
		return this.#claimBook().summary();
	}

	/** {@link #lease}, with the isolate's tally (in lease mode, isolates count their own decisions). */
	lease(request: LeaseRequest): LeaseDecision & { console?: ConsoleDownlink } {
		this.#heard(request);
		return this.#consoleState().answer(request, this.#lease(request), this.clock());
	}

	/** The console's view: headroom in each pool given, spend, history (`minutes`, `days` back), revoked keys. */
	consoleReport(request: { pools: readonly ResolvedLimits[]; minutes: number; days: number }): ObjectConsoleReport & {
		pools: { family: string | null; snapshot: RateLimitSnapshot }[];
		spend: SpendLine[];
		claims: ClaimsSummary;
		console?: ConsoleDownlink;
	} {
		this.#heard(request);
		const claims = this.claimsReport();
		const spend = this.report();
		const now = this.clock();
		const desk = this.#consoleState();
		const pools = request.pools.map((limits) => ({ family: limits.pool?.family ?? null, snapshot: this.#snapshot(specsFor(limits), now) }));
		return desk.answer(request, { ...desk.report(now, request.minutes, request.days), pools, spend, claims }, now);
	}

	/** Lists a disabled or deleted key, so every isolate refuses it at its next call here. */
	revokeKey(request: { keyId: string }): RevocationList {
		const now = this.clock();
		const list = this.#consoleState().revocations.revoke(request.keyId, now);
		this.#touched(now);
		return list;
	}

	/** Takes an enabled key off the list. */
	restoreKey(request: { keyId: string }): RevocationList {
		const now = this.clock();
		const list = this.#consoleState().revocations.restore(request.keyId, now);
		this.#touched(now);
		return list;
	}

	#consoleState(): ObjectConsole {
		this.#console ??= new ObjectConsole(this.ctx.storage.sql);
		return this.#console;
	}

	#heard(request: unknown): void {
		const now = this.clock();
		this.#consoleState().hear(request, now);
		this.#touched(now);
	}

	/** Refuses a revoked key (the isolate answers 401 once it has the list, which comes with this). */
	#revokedKey(limits: ResolvedLimits, now: number): Rejection {
		this.#load();
		return { admitted: false, limit: "requests", scope: "key", allowedPerMinute: 0, retryAfterMs: null, snapshot: this.#snapshot(specsFor(limits), now), source: "object" };
	}

	/**
	 * Deletes the buckets and meter once idle, and spend once its period has turned; everything,
	 * storage included, when nothing is left. Otherwise looks again when something would go.
	 */
	override async alarm(): Promise<void> {
		const ledger = this.#load();
		this.#alarmSet = false;
		const now = this.clock();
		this.#expireClaims(now);
		const nextClaim = this.#claimBook().nextExpiry();
		const nextTurn = ledger.prune(now);
		const consoleDue = this.#consoleState().prune(now);
		const idleFor = now - this.#lastActivity;
		let bucketsLeft = this.#buckets.size > 0 || this.#meter !== undefined;
		if (bucketsLeft && idleFor >= this.#idleMs) {
			// Spend outlives idle buckets: forget the buckets and the meter, keep the money.
			this.ctx.storage.sql.exec("DELETE FROM buckets");
			this.ctx.storage.sql.exec("DELETE FROM meter");
			this.#buckets = new Map();
			this.#meter = undefined;
			this.#idleMs = MIN_IDLE_MS;
			bucketsLeft = false;
		}
		if (!bucketsLeft && nextTurn === undefined && consoleDue === undefined && nextClaim === undefined) {
			await this.ctx.storage.deleteAll();
			this.#console?.reset();
			this.#claims?.reset();
			this.#claims = undefined;
			this.#loaded = false;
			this.#spend = undefined;
			this.#buckets = new Map();
			this.#meter = undefined;
			this.#idleMs = MIN_IDLE_MS;
			this.#lastActivity = 0;
			return;
		}
		// Scheduled by duration on the real clock, so a test clock can never make alarms loop.
		const untilIdle = bucketsLeft ? this.#idleMs - idleFor : Number.POSITIVE_INFINITY;
		const untilTurn = nextTurn === undefined ? Number.POSITIVE_INFINITY : nextTurn - now;
		const untilConsole = consoleDue === undefined ? Number.POSITIVE_INFINITY : consoleDue - now;
		const untilClaim = nextClaim === undefined ? Number.POSITIVE_INFINITY : nextClaim - now;
		this.#alarmSet = true;
		await this.ctx.storage.setAlarm(Date.now() + Math.max(1, Math.min(untilIdle, untilTurn, untilConsole, untilClaim)));
	}

	#load(): SpendLedger {
		if (this.#loaded && this.#spend !== undefined) return this.#spend;
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
		const ledger = new SpendLedger(sql);
		ledger.load();
		this.#spend = ledger;
		const claims = new ClaimBook(sql);
		claims.load();
		this.#claims = claims;
		this.#loaded = true;
		return ledger;
	}

	#check(specs: readonly BucketSpec[], cost: Cost, limits: ResolvedLimits, now: number): Hit | undefined {
		let worst: Hit | undefined;
		for (const spec of specs) {
			const wait = bucket.waitFor(this.#buckets.get(spec.key), spec.perMinute, cost[COST_FIELD[spec.dimension]], now);
			if (wait !== 0) worst = worse(worst, { limit: spec.dimension, scope: spec.scope, allowedPerMinute: spec.perMinute, wait, family: spec.family });
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
			...(hit.family === undefined ? {} : { family: hit.family }),
		};
	}

	/** A spent budget: a retry can only succeed once its period turns. */
	#overBudget(budget: BudgetHit, specs: readonly BucketSpec[], now: number): Rejection {
		return {
			admitted: false,
			limit: "spend",
			scope: budget.scope,
			allowedPerMinute: 0,
			retryAfterMs: Math.max(1, budget.resetAt - now),
			snapshot: this.#snapshot(specs, now),
			source: "object",
			budget,
		};
	}

	/** Applies signed corrections to several pools at once, netted per bucket (a workspace's is shared). */
	#correct(corrections: readonly PoolCorrection[], now: number): void {
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
		for (const { spec, units } of net.values()) if (units !== 0) this.#take(spec, units, now);
		this.#touched(now);
	}

	/** Takes `cost` from every bucket (signed), counts admitted requests when `limits` says to, writes through. */
	#charge(specs: readonly BucketSpec[], cost: Cost, limits: ResolvedLimits | undefined, now: number): void {
		const sql = this.ctx.storage.sql;
		for (const spec of specs) {
			const units = cost[COST_FIELD[spec.dimension]];
			// Taking nothing changes nothing: the arithmetic is exact, so no write is needed.
			if (units !== 0) this.#take(spec, units, now);
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
		this.#touched(now);
	}

	/** Takes `units` (signed) from one bucket and writes it through. */
	#take(spec: BucketSpec, units: number, now: number): void {
		const next = bucket.take(this.#buckets.get(spec.key), spec.perMinute, units, now);
		this.#buckets.set(spec.key, next);
		this.ctx.storage.sql.exec(
			"INSERT INTO buckets (key, level, at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET level = excluded.level, at = excluded.at",
			spec.key,
			next.level,
			next.at,
		);
	}

	/** Notes activity, and makes sure an alarm will look at the state. */
	#touched(now: number): void {
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

function checkedCharges(charges: readonly SpendCharge[] | undefined): SpendCharge[] {
	return (charges ?? []).map((charge, i) => {
		if (!Number.isSafeInteger(charge.nanos) || charge.nanos < 0) throw new RangeError(`spend[${i}].nanos must be a whole number of nano-dollars, 0 or more, got ${charge.nanos}`);
		return charge;
	});
}

/** The buckets of several pools, each once (a workspace's buckets are shared by every pool). */
function specsOfPools(pools: readonly ResolvedLimits[]): BucketSpec[] {
	const specs = new Map<string, BucketSpec>();
	for (const limits of pools) for (const spec of specsFor(limits)) if (!specs.has(spec.key)) specs.set(spec.key, spec);
	return [...specs.values()];
}

function samePool(a: ResolvedLimits, b: ResolvedLimits): boolean {
	return (a.pool?.family ?? null) === (b.pool?.family ?? null);
}

function checkedNanos(nanos: number, name: string): number {
	if (!Number.isSafeInteger(nanos) || nanos < 0) throw new RangeError(`${name} must be a whole number of nano-dollars, 0 or more, got ${nanos}`);
	return nanos;
}

/** A claim's id as the isolate made it: short printable text. */
function claimId(id: unknown): string {
	if (typeof id !== "string" || !/^[\x21-\x7e]{1,64}$/.test(id)) throw new RangeError("claim.id must be 1 to 64 printable characters");
	return id;
}
