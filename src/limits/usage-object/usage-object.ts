import { DurableObject } from "cloudflare:workers";
import type { RevocationList } from "../../keys/revocations";
import { batchClaimId, CLAIM_TTL_MS, ClaimBook, type ClaimsSummary } from "../claims/claim-book";
import type { ConsoleDownlink } from "../console/console-link";
import { ObjectConsole, type ObjectConsoleReport } from "../console/object-console";
import type {
	AccelerationConfig,
	Cost,
	Decision,
	GrowDecision,
	PoolCorrection,
	RateLimitSnapshot,
	Rejection,
	ResolvedLimits,
	SettleClaimResult,
	SettleResult,
} from "../decisions";
import { type BucketSpec, COST_FIELD, checkedCost, checkedDelta, type Dimension, type Hit, samePool, specsFor, specsOfPools } from "../rates/bucket-specs";
import { BucketStore, MIN_IDLE_MS } from "../rates/bucket-store";
import type { BudgetHit } from "../spend/money";
import { type SpendCharge, SpendLedger, type SpendLine } from "../spend/spend-ledger";
import {
	type LeaseDecision,
	type LeaseRequest,
	MAX_LEASE_TTL_MS,
	type ObjectAdmitRequest,
	type ObjectGrowRequest,
	type ObjectSettleClaimRequest,
	type ObjectSettleRequest,
} from "./rpc";

/** The object's state in its SQLite, one store per concern, loaded together once per instance. */
interface Stores {
	/** Token buckets and the acceleration meter. */
	readonly buckets: BucketStore;
	/** Spend per scope and period. */
	readonly spend: SpendLedger;
	/** Claims outstanding, and the settlements made. */
	readonly claims: ClaimBook;
}

/**
 * One organisation's usage (`idFromName(orgId)`), in its own SQLite database, one store per
 * concern: the token buckets of the organisation, its model families' pools and its workspaces,
 * with the acceleration meter (`rates/bucket-store.ts`); the spend of the organisation, its
 * workspaces and keys per UTC day and month (`spend/spend-ledger.ts`); the claims outstanding
 * (`claims/claim-book.ts`); the console's history and revocation list (`console/object-console.ts`).
 * Every RPC method runs to the end without awaiting, so each check-then-charge across the stores is
 * atomic and concurrent calls are exact. Each store is loaded once per instance and written
 * through, so the state survives eviction and restarts. An alarm forgets the buckets and meter once
 * idle (by then they equal a fresh object's: buckets full, meter decayed below 1%), spend once its
 * period has turned, and claims their isolates never settled once they expire.
 */
export class UsageObject extends DurableObject {
	/**
	 * The object's clock (epoch ms). A test seam, set through `runInDurableObject`; instance
	 * properties are not reachable over RPC, so callers cannot change it.
	 */
	clock: () => number = Date.now;

	#stores: Stores | undefined;
	#console: ObjectConsole | undefined;
	#alarmSet = false;
	#lastActivity = 0;

	/**
	 * Checks `cost` against every limit, then charges all of it, or nothing. A spent budget of the
	 * organisation, the workspace or the key refuses the request before any bucket is looked at.
	 */
	#admit(request: ObjectAdmitRequest): Decision {
		const cost = checkedCost(request.cost, "cost");
		const terms = request.claim;
		const nanos = terms === undefined ? 0 : checkedNanos(terms.nanos, "claim.nanos");
		const { buckets, spend, claims } = this.#load();
		const now = this.clock();
		const pools = [request.limits, ...(terms?.pools ?? [])];
		const specs = specsOfPools(pools);
		const spent = spend.check(request.limits.budgets, request.workspaceId, request.keyId, now, { nanos, held: (scope) => claims.heldNanos(scope) });
		if (spent !== undefined) return overBudget(spent, buckets.snapshot(specsFor(request.limits), now), now);
		const hit = buckets.check(specs, cost, request.limits.acceleration, now);
		if (hit !== undefined) return rejection(hit, buckets.snapshot(specsFor(request.limits), now));
		this.#charge(specs, cost, request.limits.acceleration, now);
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
			snapshot: buckets.snapshot(specsFor(request.limits), now),
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
		const { buckets, spend, claims } = this.#load();
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
		const spent = nanos > 0 ? spend.check(primary.budgets, claim.workspaceId, claim.keyId, now, { nanos, held: (scope) => claims.heldNanos(scope) }) : undefined;
		if (spent !== undefined) return overBudget(spent, buckets.snapshot(specsFor(primary), now), now);
		const worst = buckets.checkUnits(specs, unitsFor, now);
		if (worst !== undefined) return rejection(worst, buckets.snapshot(specsFor(primary), now));
		for (const [spec, units] of released) if (units !== 0) buckets.take(spec, -units, now);
		for (const spec of specs) {
			const units = unitsFor(spec);
			if (units !== 0) buckets.take(spec, units, now);
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
		return { admitted: true, snapshot: buckets.snapshot(specsFor(primary), now) };
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
		const { buckets, spend, claims } = this.#load();
		const now = this.clock();
		const claim = claims.get(request.claimId);
		if (claim === undefined) return { settled: false, exhausted: spend.exhausted(request.limits.budgets, request.limits.workspace?.id, now) };
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
			if (delta !== 0) buckets.take(spec, delta, now);
		}
		if (charges.length > 0) spend.add(charges, request.limits.budgets, now);
		claims.settled(claim, charges.reduce((sum, charge) => sum + charge.nanos, 0));
		this.#touched(now);
		return { settled: true, exhausted: spend.exhausted(request.limits.budgets, request.limits.workspace?.id, now) };
	}

	/** Claims whose isolate never settled them are settled as charged: their units stay taken, their money is spent. */
	#expireClaims(now: number): void {
		const { spend, claims } = this.#load();
		if ((claims.nextExpiry() ?? Number.POSITIVE_INFINITY) > now) return;
		for (const claim of claims.expired(now)) {
			const charge = claim.nanos > 0 ? [{ workspaceId: claim.workspaceId, keyId: claim.keyId, nanos: claim.nanos }] : [];
			if (charge.length > 0) spend.add(charge, claim.pools[0]?.budgets, now);
			claims.settled(claim, claim.nanos);
		}
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
		const { buckets, spend } = this.#load();
		const now = this.clock();
		if (returned !== undefined) moves.push({ limits: request.limits, requests: -returned.requests, inputTokens: -returned.inputTokens, outputTokens: -returned.outputTokens });
		buckets.correct([first, ...moves], now);
		this.#touched(now);
		if (charges.length > 0) {
			spend.add(charges, request.limits.budgets, now);
			this.#touched(now);
		}
		return { exhausted: spend.exhausted(request.limits.budgets, request.limits.workspace?.id, now) };
	}

	/** Every scope's spend in the current day and month, for `npm run keys -- usage`. */
	report(): SpendLine[] {
		return this.#load().spend.report(this.clock());
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
		const { buckets, spend } = this.#load();
		const now = this.clock();
		const specs = specsFor(request.limits);
		if (owed.requests !== 0 || owed.inputTokens !== 0 || owed.outputTokens !== 0) this.#charge(specs, owed, undefined, now);
		if (charges.length > 0) spend.add(charges, request.limits.budgets, now);
		const spent = need.requests > 0 ? spend.check(request.limits.budgets, request.workspaceId, request.keyId, now) : undefined;
		if (spent !== undefined) return overBudget(spent, buckets.snapshot(specs, now), now);
		const hit = buckets.check(specs, need, request.limits.acceleration, now);
		if (hit !== undefined) return rejection(hit, buckets.snapshot(specs, now));
		const grant = (dimension: Dimension, ceiling: number): number => {
			const field = COST_FIELD[dimension];
			let units = Math.min(want[field], ceiling);
			for (const spec of specs) {
				if (spec.dimension === dimension) units = Math.min(units, buckets.available(spec, now));
			}
			return Math.max(need[field], units);
		};
		const acceleration = request.limits.acceleration;
		const room = acceleration === undefined ? Number.POSITIVE_INFINITY : buckets.headroom(acceleration, now);
		const units = {
			requests: grant("requests", room),
			inputTokens: grant("input_tokens", Number.POSITIVE_INFINITY),
			outputTokens: grant("output_tokens", Number.POSITIVE_INFINITY),
		};
		this.#charge(specs, units, acceleration, now);
		const ttlMs = Math.min(MAX_LEASE_TTL_MS, Math.max(1, Math.floor(request.ttlMs)));
		const exhausted = spend.exhausted(request.limits.budgets, request.limits.workspace?.id, now);
		return { admitted: true, units, ttlMs, snapshot: buckets.snapshot(specs, now), ...(exhausted.length > 0 ? { exhausted } : {}) };
	}

	// --- The operator console (console/object-console.ts): each call above also carries the
	// isolate's tally into the history and brings back the revocation list when it changed.

	/** {@link #admit}, counted in the history; a key on the revocation list is refused uncharged. */
	admit(request: ObjectAdmitRequest): Decision & { console?: ConsoleDownlink } {
		const now = this.clock();
		const desk = this.#consoleState();
		desk.hear(request, now);
		if (desk.revocations.has(request.keyId, now)) {
			desk.refusedRevoked(now);
			this.#touched(now);
			return this.#written(desk.answer(request, this.#revokedKey(request.limits, now), now, true));
		}
		this.#expireClaims(now);
		const decision = this.#admit(request);
		desk.decided(decision, now);
		this.#touched(now);
		return this.#written(desk.answer(request, decision, now));
	}

	/** {@link #settle}, with the isolate's tally. */
	settle(request: ObjectSettleRequest): SettleResult & { console?: ConsoleDownlink } {
		this.#heard(request);
		return this.#written(this.#consoleState().answer(request, this.#settle(request), this.clock()));
	}

	/** {@link #grow}, with the isolate's tally. */
	grow(request: ObjectGrowRequest): GrowDecision & { console?: ConsoleDownlink } {
		this.#heard(request);
		this.#expireClaims(this.clock());
		return this.#written(this.#consoleState().answer(request, this.#grow(request), this.clock()));
	}

	/** {@link #settleClaim}, with the isolate's tally. */
	settleClaim(request: ObjectSettleClaimRequest): SettleClaimResult & { console?: ConsoleDownlink } {
		this.#heard(request);
		return this.#written(this.#consoleState().answer(request, this.#settleClaim(request), this.clock()));
	}

	/**
	 * A created batch takes over its creation request's claim (`batch:<batchId>`): held against
	 * budgets and limits until its results are read through the guard, or charged when it expires.
	 */
	holdForBatch(request: { orgId: string; claimId: string; batchId: string }): { held: boolean } {
		this.#heard(request);
		const { claims } = this.#load();
		const claim = claims.get(String(request.claimId));
		const batchId = String(request.batchId);
		if (claim === undefined || !/^[\x21-\x7e]{1,128}$/.test(batchId) || claims.get(batchClaimId(batchId)) !== undefined) return this.#written({ held: false });
		claims.holdForBatch(claim, batchId, this.clock());
		return this.#written({ held: true });
	}

	/** What the claims outstanding hold, and what settlements charged (the invariant tests read it). */
	claimsReport(): ClaimsSummary {
		this.#expireClaims(this.clock());
		return this.#written(this.#load().claims.summary());
	}

	/** {@link #lease}, with the isolate's tally (in lease mode, isolates count their own decisions). */
	lease(request: LeaseRequest): LeaseDecision & { console?: ConsoleDownlink } {
		this.#heard(request);
		return this.#written(this.#consoleState().answer(request, this.#lease(request), this.clock()));
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
		const { buckets } = this.#load();
		const pools = request.pools.map((limits) => ({ family: limits.pool?.family ?? null, snapshot: buckets.snapshot(specsFor(limits), now) }));
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

	/** Writes the buckets and the history counts this call changed, in one statement each, before it answers. */
	#written<T>(answer: T): T {
		this.#stores?.buckets.flush();
		this.#console?.history.flush();
		return answer;
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
		const { buckets } = this.#load();
		return { admitted: false, limit: "requests", scope: "key", allowedPerMinute: 0, retryAfterMs: null, snapshot: buckets.snapshot(specsFor(limits), now), source: "object" };
	}

	/**
	 * Forgets the buckets and meter once idle, spend once its period has turned, and expired claims;
	 * deletes everything, storage included, when nothing is left. Otherwise looks again when
	 * something would go.
	 */
	override async alarm(): Promise<void> {
		const { buckets, spend, claims } = this.#load();
		this.#alarmSet = false;
		const now = this.clock();
		this.#expireClaims(now);
		buckets.flush();
		const nextClaim = claims.nextExpiry();
		const nextTurn = spend.prune(now);
		const consoleDue = this.#consoleState().prune(now);
		const idleFor = now - this.#lastActivity;
		let bucketsLeft = buckets.held;
		if (bucketsLeft && idleFor >= buckets.idleMs) {
			// Spend outlives idle buckets: forget the buckets and the meter, keep the money.
			buckets.clear();
			bucketsLeft = false;
		}
		if (!bucketsLeft && nextTurn === undefined && consoleDue === undefined && nextClaim === undefined) {
			await this.ctx.storage.deleteAll();
			this.#console?.reset();
			this.#stores = undefined;
			this.#lastActivity = 0;
			return;
		}
		// Scheduled by duration on the real clock, so a test clock can never make alarms loop.
		const untilIdle = bucketsLeft ? buckets.idleMs - idleFor : Number.POSITIVE_INFINITY;
		const untilTurn = nextTurn === undefined ? Number.POSITIVE_INFINITY : nextTurn - now;
		const untilConsole = consoleDue === undefined ? Number.POSITIVE_INFINITY : consoleDue - now;
		const untilClaim = nextClaim === undefined ? Number.POSITIVE_INFINITY : nextClaim - now;
		this.#alarmSet = true;
		await this.ctx.storage.setAlarm(Date.now() + Math.max(1, Math.min(untilIdle, untilTurn, untilConsole, untilClaim)));
	}

	/** The stores, read from SQLite on first use (and again after the alarm deleted everything). */
	#load(): Stores {
		if (this.#stores !== undefined) return this.#stores;
		const sql = this.ctx.storage.sql;
		const buckets = new BucketStore(sql);
		this.#lastActivity = Math.max(this.#lastActivity, buckets.load());
		const spend = new SpendLedger(sql);
		spend.load();
		const claims = new ClaimBook(sql);
		claims.load();
		this.#stores = { buckets, spend, claims };
		return this.#stores;
	}

	/** Charges `cost` to the buckets (and to the meter, with `acceleration`), and notes the activity. */
	#charge(specs: readonly BucketSpec[], cost: Cost, acceleration: AccelerationConfig | undefined, now: number): void {
		this.#load().buckets.charge(specs, cost, acceleration, now);
		this.#touched(now);
	}

	/** Notes activity, and makes sure an alarm will look at the state. */
	#touched(now: number): void {
		this.#lastActivity = Math.max(this.#lastActivity, now);
		if (!this.#alarmSet) {
			this.#alarmSet = true;
			void this.ctx.storage.setAlarm(Date.now() + (this.#stores?.buckets.idleMs ?? MIN_IDLE_MS));
		}
	}
}

/** A limit the request would pass: refused, with the retry it allows. */
function rejection(hit: Hit, snapshot: RateLimitSnapshot): Rejection {
	return {
		admitted: false,
		limit: hit.limit,
		scope: hit.scope,
		allowedPerMinute: hit.allowedPerMinute,
		retryAfterMs: hit.wait,
		snapshot,
		source: "object",
		...(hit.family === undefined ? {} : { family: hit.family }),
	};
}

/** A spent budget: a retry can only succeed once its period turns. */
function overBudget(budget: BudgetHit, snapshot: RateLimitSnapshot, now: number): Rejection {
	return {
		admitted: false,
		limit: "spend",
		scope: budget.scope,
		allowedPerMinute: 0,
		retryAfterMs: Math.max(1, budget.resetAt - now),
		snapshot,
		source: "object",
		budget,
	};
}

function checkedCharges(charges: readonly SpendCharge[] | undefined): SpendCharge[] {
	return (charges ?? []).map((charge, i) => {
		if (!Number.isSafeInteger(charge.nanos) || charge.nanos < 0) throw new RangeError(`spend[${i}].nanos must be a whole number of nano-dollars, 0 or more, got ${charge.nanos}`);
		return charge;
	});
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
