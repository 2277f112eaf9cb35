import { BoundedMap } from "../../lib/bounded-map";
import type { Cost, Decision, GrowDecision, PoolCorrection, RateLimitSnapshot, ResolvedLimits, SettleResult } from "../decisions";
import { moreRestrictive } from "../rates/bucket-specs";
import type { SpendCharge } from "../spend/spend-ledger";
import { type LeaseDecision, type LeaseRequest, MAX_LEASE_TTL_MS, type ObjectSettleRequest } from "../usage-object/rpc";
import { type NoteScope, type RejectionNotes, scopeKey } from "./rejection-notes";

/**
 * Lease mode: the isolate asks the organisation's object for a slice of allowance (requests and
 * input tokens, charged to the buckets at once), spends it locally, and asks for the next slice
 * when the current one runs low, so a hot organisation costs one object call per slice.
 *
 * Overshoot bound. A slice is charged to the buckets when granted, spent only within `ttlMs` of
 * the moment the isolate asked for it, and what is left is credited back on a later call (never
 * twice) or lost with the isolate. Every unit admitted in a window was therefore granted at most
 * `ttlMs` before the window began, so in any window of length T:
 *   exact mode admits at most  limit + rate × T,
 *   lease mode admits at most  limit + rate × (T + ttlMs),
 * and the difference is at most what the isolates hold when the window begins, which is at most
 * two slices per isolate (a slice is at most `maxFraction` of the limit):
 *   overshoot ≤ min(rate × ttlMs, isolates × 2 × maxFraction × limit)   per limit and scope.
 * With the defaults (5 s, 5%) that is at most 1/12 of a limit per minute, and 10% per isolate.
 * Output tokens are leased like input: a request spends its `max_tokens` from a slice (the claim
 * ACCOUNTING.md asks for), and settlement's correction (actual minus claimed) is batched and sent
 * with the next call, or once it is `maxFraction` of the output limit, and at the latest `flushMs`
 * after it was settled (a timer kept alive with `waitUntil`), or when its scope is dropped from
 * the isolate's table. Acceleration counts granted units when granted,
 * and a grant is capped at the meter's headroom. Exact mode has no overshoot.
 *
 * Budgets are never leased: a request of an organisation with a budget, or whose model is not
 * known yet (claimed in every pool), is claimed at the object as in exact mode, so money is exact
 * in both modes.
 */

/** What lease mode needs from the object, with the client's time bound already applied. */
export interface LeaseCalls {
	lease(orgId: string, request: LeaseRequest): Promise<LeaseDecision>;
	settle(orgId: string, request: ObjectSettleRequest): Promise<SettleResult | undefined>;
}

/** Tuning of lease mode. */
export interface LeaseOptions {
	/** How long a slice may be spent, ms (default 5000). */
	readonly ttlMs?: number;
	/** The largest slice, as a fraction of the limit (default 0.05). */
	readonly maxFraction?: number;
	/** Ask for the next slice when this fraction of the current one is left (default 0.25). */
	readonly lowWater?: number;
	/** Settled usage reaches the object at the latest this long after it was settled, ms (default `ttlMs`). */
	readonly flushMs?: number;
	/** The most scopes an isolate keeps (default 10,000); past it the oldest is flushed and dropped. */
	readonly maxScopes?: number;
	/** Waits `ms` of real time (default: a timer); the flush timer. */
	readonly sleep?: (ms: number) => Promise<void>;
}

interface Slice {
	requests: number;
	inputTokens: number;
	outputTokens: number;
	readonly granted: number;
	readonly expiresAt: number;
}

interface Pending {
	requests: number;
	inputTokens: number;
	outputTokens: number;
	spend: SpendCharge[];
	since: number | undefined;
}

interface Scope {
	readonly orgId: string;
	/** The limits the scope was last used with: what a flush sends. */
	limits: ResolvedLimits;
	slices: Slice[];
	/** The next slice's request count: doubled while slices go fast, cut to what was used when one expires. */
	size: number;
	lastGrantAt: number;
	/** Requests waiting for the renewal in flight. */
	waiting: number;
	averageInput: number;
	averageOutput: number;
	renewal: Promise<void> | undefined;
	returned: { requests: number; inputTokens: number; outputTokens: number };
	pending: Pending;
	snapshot: RateLimitSnapshot | undefined;
	/** A timer flush is on its way. */
	flushing: boolean;
	/** Dropped from the table: what it holds was given back or sent. */
	dropped: boolean;
}

const MAX_SCOPES = 10_000;
/** Distinct workspaces and keys whose costs one batch keeps apart; past it, they count for the organisation only. */
const MAX_SPEND_ENTRIES = 1000;

/**
 * The isolate's leases, one per organisation, workspace with limits of its own, and model family
 * with a pool of its own.
 */
export class LeaseClient {
	readonly #scopes: BoundedMap<string, Scope>;
	readonly #ttlMs: number;
	readonly #maxFraction: number;
	readonly #lowWater: number;
	readonly #flushMs: number;
	readonly #sleep: (ms: number) => Promise<void>;

	constructor(
		private readonly calls: LeaseCalls,
		private readonly notes: RejectionNotes | undefined,
		private readonly now: () => number,
		private readonly waitUntil: (promise: Promise<unknown>) => void,
		options: LeaseOptions = {},
	) {
		this.#ttlMs = Math.min(MAX_LEASE_TTL_MS, Math.max(1, options.ttlMs ?? 5000));
		this.#maxFraction = Math.min(1, Math.max(0, options.maxFraction ?? 0.05));
		this.#lowWater = Math.min(1, Math.max(0, options.lowWater ?? 0.25));
		this.#flushMs = Math.max(1, options.flushMs ?? this.#ttlMs);
		this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
		this.#scopes = new BoundedMap(options.maxScopes ?? MAX_SCOPES, { onEvict: (_key, scope) => this.#drop(scope) });
	}

	/**
	 * Admits from a local slice, or from a new one. One renewal per scope is in flight at a time:
	 * concurrent requests wait for it and spend what it brought before asking again. A budget the
	 * object said is spent refuses at once, before any slice is spent.
	 */
	async admit(orgId: string, who: NoteScope, limits: ResolvedLimits, inputTokens: number, outputTokens = 0): Promise<Decision> {
		const scope = this.#scope(orgId, limits);
		const cost: Cost = { requests: 1, inputTokens, outputTokens };
		const noteScope = { ...who, family: limits.pool?.family };
		const spent = this.notes?.findBudget(orgId, noteScope, this.now());
		if (spent !== undefined) return spent;
		scope.averageInput += (inputTokens - scope.averageInput) * 0.2;
		scope.averageOutput += (outputTokens - scope.averageOutput) * 0.2;
		// Every pass either admits, refuses, or waits for a renewal that serves at least its initiator.
		for (;;) {
			const local = this.#spend(scope, orgId, who, cost, limits);
			if (local !== undefined) return local;
			const noted = this.notes?.find(orgId, noteScope, cost, this.now());
			if (noted !== undefined) return noted;
			if (scope.renewal === undefined) break;
			scope.waiting++;
			await scope.renewal;
			scope.waiting--;
		}
		const call = this.#call(scope, orgId, limits, cost, true, who);
		this.#inFlight(scope, call);
		const decision = await call;
		if (!decision.admitted) {
			this.notes?.remember(orgId, noteScope, cost, decision, this.now());
			return decision;
		}
		return this.#admission(scope, orgId, who, cost);
	}

	/**
	 * More input (a body arriving) or output (its `max_tokens`, read at its end) for an admitted
	 * request: from a local slice, or from a new lease of at least that. Refused: nothing was taken.
	 */
	async grow(orgId: string, who: NoteScope, limits: ResolvedLimits, inputTokens: number, outputTokens = 0): Promise<GrowDecision> {
		const scope = this.#scope(orgId, limits);
		const cost: Cost = { requests: 0, inputTokens, outputTokens };
		this.#expire(scope, this.now());
		const slice = scope.slices.find((s) => s.inputTokens >= inputTokens && s.outputTokens >= outputTokens);
		if (slice !== undefined && scope.snapshot !== undefined) {
			slice.inputTokens -= inputTokens;
			slice.outputTokens -= outputTokens;
			return { admitted: true, snapshot: scope.snapshot };
		}
		const decision = await this.#call(scope, orgId, limits, cost, true, who);
		return decision.admitted ? { admitted: true, snapshot: decision.snapshot } : decision;
	}

	/**
	 * Batches the corrections (each into its pool's scope) and the costs; sends a scope's batch
	 * when it is large enough, and otherwise within `flushMs` on a timer.
	 */
	async settle(orgId: string, corrections: readonly PoolCorrection[], spend: readonly SpendCharge[]): Promise<void> {
		const now = this.now();
		const due: Scope[] = [];
		for (const [i, correction] of corrections.entries()) {
			const last = i === corrections.length - 1;
			const empty = correction.requests === 0 && correction.inputTokens === 0 && correction.outputTokens === 0;
			if (empty && !(last && spend.length > 0)) continue;
			const scope = this.#scope(orgId, correction.limits);
			const pending = scope.pending;
			pending.requests += correction.requests;
			pending.inputTokens += correction.inputTokens;
			pending.outputTokens += correction.outputTokens;
			if (last) for (const charge of spend) addSpend(pending, charge);
			pending.since ??= now;
			const pool = correction.limits.pool?.limits ?? correction.limits.organization;
			const large = pending.outputTokens >= Math.max(1, Math.floor(pool.outputTokensPerMinute * this.#maxFraction));
			if (large || now - pending.since >= this.#flushMs) due.push(scope);
			else this.#flushLater(scope);
		}
		for (const scope of due) await this.#flush(scope);
	}

	/** Sends a scope's batch now (and, for a dropped scope, every unit it still held). */
	async #flush(scope: Scope): Promise<void> {
		const returned = scope.returned;
		const idle = scope.pending.since === undefined && returned.requests === 0 && returned.inputTokens === 0 && returned.outputTokens === 0;
		if (idle) return;
		scope.returned = { requests: 0, inputTokens: 0, outputTokens: 0 };
		const sent = takePending(scope);
		let result: SettleResult | undefined;
		try {
			result = await this.calls.settle(scope.orgId, {
				orgId: scope.orgId,
				limits: scope.limits,
				requests: sent.requests,
				inputTokens: sent.inputTokens,
				outputTokens: sent.outputTokens,
				...(sent.spend.length > 0 ? { spend: sent.spend } : {}),
				...(returned.requests > 0 || returned.inputTokens > 0 || returned.outputTokens > 0 ? { returned } : {}),
			});
		} catch (error) {
			// Returned units may have been credited already: drop them rather than risk twice.
			restoreDebits(scope, sent);
			throw error;
		}
		this.#noteSpent(scope, result?.exhausted);
	}

	/** Flushes the scope's batch `flushMs` from now, unless a flush is already on its way. */
	#flushLater(scope: Scope): void {
		if (scope.flushing) return;
		scope.flushing = true;
		const flush = this.#sleep(this.#flushMs).then(() => {
			scope.flushing = false;
			// A failed flush keeps its debits for the next call; nobody waits on this one.
			return this.#flush(scope).catch(() => undefined);
		});
		this.waitUntil(flush);
	}

	/** A scope pushed out of the table: its batch is sent and its unspent units given back. */
	#drop(scope: Scope): void {
		scope.dropped = true;
		for (const slice of scope.slices) {
			scope.returned.requests += slice.requests;
			scope.returned.inputTokens += slice.inputTokens;
			scope.returned.outputTokens += slice.outputTokens;
		}
		scope.slices = [];
		this.waitUntil(this.#flush(scope).catch(() => undefined));
	}

	#noteSpent(scope: Scope, exhausted: LeaseGrantExhausted): void {
		if (exhausted === undefined || this.notes === undefined || scope.snapshot === undefined) return;
		const now = this.now();
		for (const budget of exhausted) {
			this.notes.rememberBudget(scope.orgId, budget, { admitted: false, allowedPerMinute: 0, snapshot: scope.snapshot, source: "object" }, now);
		}
	}

	#spend(scope: Scope, orgId: string, who: NoteScope, cost: Cost, limits: ResolvedLimits): Decision | undefined {
		const now = this.now();
		this.#expire(scope, now);
		const slice = scope.slices.find((s) => s.requests >= cost.requests && s.inputTokens >= cost.inputTokens && s.outputTokens >= cost.outputTokens);
		if (slice === undefined || scope.snapshot === undefined) return undefined;
		slice.requests -= cost.requests;
		slice.inputTokens -= cost.inputTokens;
		slice.outputTokens -= cost.outputTokens;
		const left = scope.slices.reduce((sum, s) => sum + s.requests, 0);
		if (scope.renewal === undefined && left < this.#lowWater * scope.size) this.#renewAhead(scope, orgId, limits, who);
		return this.#admission(scope, orgId, who, cost);
	}

	/** Moves expired slices' leftovers to what the next call returns, and sizes the next slice by use. */
	#expire(scope: Scope, now: number): void {
		while (scope.slices[0] !== undefined && scope.slices[0].expiresAt <= now) {
			const slice = scope.slices[0];
			scope.slices.shift();
			scope.returned.requests += slice.requests;
			scope.returned.inputTokens += slice.inputTokens;
			scope.returned.outputTokens += slice.outputTokens;
			if (slice.requests > 0) scope.size = Math.max(1, slice.granted - slice.requests);
		}
	}

	#renewAhead(scope: Scope, orgId: string, limits: ResolvedLimits, who: NoteScope): void {
		const need: Cost = { requests: 1, inputTokens: 0, outputTokens: 0 };
		const call = this.#call(scope, orgId, limits, need, false, who).then((decision) => {
			if (!decision.admitted) this.notes?.remember(orgId, { ...who, family: limits.pool?.family }, need, decision, this.now());
		});
		this.waitUntil(this.#inFlight(scope, call));
	}

	/** Marks `call` as the scope's renewal until it settles; waiting on it never throws. */
	#inFlight(scope: Scope, call: Promise<unknown>): Promise<void> {
		const renewal: Promise<void> = call.then(
			() => undefined,
			() => undefined,
		);
		scope.renewal = renewal;
		void renewal.then(() => {
			if (scope.renewal === renewal) scope.renewal = undefined;
		});
		return renewal;
	}

	/** One lease call; the grant, less `need` when `spendNeed`, becomes a slice. */
	async #call(scope: Scope, orgId: string, limits: ResolvedLimits, need: Cost, spendNeed: boolean, who: NoteScope): Promise<LeaseDecision> {
		const start = this.now();
		const largest = maxSlice(limits, "requestsPerMinute", this.#maxFraction);
		// Slices that last less than half their time: ask for twice as much.
		if (start - scope.lastGrantAt < this.#ttlMs / 2) scope.size = Math.min(scope.size * 2, largest);
		const inputCeiling = maxSlice(limits, "inputTokensPerMinute", this.#maxFraction);
		const outputCeiling = maxSlice(limits, "outputTokensPerMinute", this.#maxFraction);
		const held = scope.slices.reduce((sum, slice) => sum + slice.requests, 0);
		const ceiling = Math.min(
			largest,
			// No more requests than the input tokens of a slice cover, and never more than two slices held.
			scope.averageInput > 0 ? Math.floor(inputCeiling / scope.averageInput) : largest,
			scope.averageOutput > 0 ? Math.floor(outputCeiling / scope.averageOutput) : largest,
			2 * largest - held,
		);
		const requests = Math.max(need.requests, Math.min(Math.max(scope.size, scope.waiting + need.requests), ceiling));
		const want: Cost = {
			requests,
			inputTokens: Math.max(need.inputTokens, Math.min(inputCeiling, Math.ceil(scope.averageInput * requests))),
			outputTokens: Math.max(need.outputTokens, Math.min(outputCeiling, Math.ceil(scope.averageOutput * requests))),
		};
		const returned = scope.returned;
		scope.returned = { requests: 0, inputTokens: 0, outputTokens: 0 };
		const { spend, ...usage } = takePending(scope);
		let decision: LeaseDecision;
		try {
			decision = await this.calls.lease(orgId, {
				orgId,
				limits,
				need,
				want,
				returned,
				usage,
				ttlMs: this.#ttlMs,
				workspaceId: who.workspaceId,
				keyId: who.keyId,
				...(spend.length > 0 ? { spend } : {}),
			});
		} catch (error) {
			// Returned units may have been credited already: drop them rather than risk twice.
			restoreDebits(scope, { ...usage, spend });
			throw error;
		}
		if (!decision.admitted) return decision;
		const taken = spendNeed ? need : { requests: 0, inputTokens: 0, outputTokens: 0 };
		scope.slices.push({
			requests: decision.units.requests - taken.requests,
			inputTokens: decision.units.inputTokens - taken.inputTokens,
			outputTokens: decision.units.outputTokens - taken.outputTokens,
			granted: decision.units.requests,
			expiresAt: start + decision.ttlMs,
		});
		scope.snapshot = decision.snapshot;
		scope.lastGrantAt = start;
		this.#noteSpent(scope, decision.exhausted);
		return decision;
	}

	#admission(scope: Scope, orgId: string, who: NoteScope, cost: Cost): Decision {
		const snapshot = scope.snapshot;
		if (snapshot === undefined) throw new Error("a lease admission needs a snapshot");
		let requests = 0;
		let inputTokens = 0;
		for (const slice of scope.slices) {
			requests += slice.requests;
			inputTokens += slice.inputTokens;
		}
		const input = { ...snapshot.inputTokens, remaining: snapshot.inputTokens.remaining + inputTokens };
		const output = snapshot.outputTokens;
		const family = scope.limits.pool?.family;
		return {
			admitted: true,
			reservation: { orgId, workspaceId: who.workspaceId, inputTokens: cost.inputTokens, outputTokens: cost.outputTokens, via: "lease", keyId: who.keyId, family },
			snapshot: {
				requests: { ...snapshot.requests, remaining: snapshot.requests.remaining + requests },
				inputTokens: input,
				outputTokens: output,
				tokens: moreRestrictive(input, output),
			},
			source: "lease",
			family,
		};
	}

	/** The scope of a pool: the organisation's (or a family's), per workspace with limits of its own. */
	#scope(orgId: string, limits: ResolvedLimits): Scope {
		const key = `${scopeKey(orgId, limits.workspace?.id)}\u0000${limits.pool?.family ?? ""}`;
		const found = this.#scopes.get(key);
		if (found !== undefined) {
			found.limits = limits;
			return found;
		}
		const scope: Scope = {
			orgId,
			limits,
			slices: [],
			size: 1,
			lastGrantAt: Number.NEGATIVE_INFINITY,
			waiting: 0,
			averageInput: 0,
			averageOutput: 0,
			renewal: undefined,
			returned: { requests: 0, inputTokens: 0, outputTokens: 0 },
			pending: emptyPending(),
			snapshot: undefined,
			flushing: false,
			dropped: false,
		};
		this.#scopes.set(key, scope);
		return scope;
	}
}

type LeaseGrantExhausted = SettleResult["exhausted"] | undefined;

/** The largest slice of one limit: `fraction` of the stricter of the pool's and the workspace's. */
function maxSlice(limits: ResolvedLimits, field: "requestsPerMinute" | "inputTokensPerMinute" | "outputTokensPerMinute", fraction: number): number {
	const pool = limits.pool?.limits[field] ?? limits.organization[field];
	return Math.max(1, Math.floor(Math.min(pool, limits.workspace?.limits[field] ?? pool) * fraction));
}

function emptyPending(): Pending {
	return { requests: 0, inputTokens: 0, outputTokens: 0, spend: [], since: undefined };
}

function takePending(scope: Scope): Omit<Pending, "since"> {
	const { requests, inputTokens, outputTokens, spend } = scope.pending;
	scope.pending = emptyPending();
	return { requests, inputTokens, outputTokens, spend };
}

/** Adds a cost to the batch, summed per workspace and key. */
function addSpend(pending: Pending, charge: SpendCharge): void {
	if (charge.nanos <= 0) return;
	const same = pending.spend.find((entry) => entry.workspaceId === charge.workspaceId && entry.keyId === charge.keyId);
	if (same !== undefined) {
		pending.spend[pending.spend.indexOf(same)] = { ...same, nanos: same.nanos + charge.nanos };
	} else if (pending.spend.length < MAX_SPEND_ENTRIES) {
		pending.spend.push({ ...charge });
	} else {
		// Too many keys in one batch: the money still counts for the organisation.
		const organization = pending.spend.find((entry) => entry.workspaceId === undefined && entry.keyId === undefined);
		if (organization !== undefined) pending.spend[pending.spend.indexOf(organization)] = { nanos: organization.nanos + charge.nanos };
		else pending.spend.push({ nanos: charge.nanos });
	}
}

/** After a failed call: keep owed usage and costs for the next one, drop credits (they may have landed). */
function restoreDebits(scope: Scope, sent: Omit<Pending, "since">): void {
	scope.pending.requests += Math.max(0, sent.requests);
	scope.pending.inputTokens += Math.max(0, sent.inputTokens);
	scope.pending.outputTokens += Math.max(0, sent.outputTokens);
	for (const charge of sent.spend) addSpend(scope.pending, charge);
	scope.pending.since ??= 0;
}
