import { BoundedMap } from "../lib/bounded-map";
import {
	type Cost,
	type Decision,
	type LeaseDecision,
	type LeaseRequest,
	MAX_LEASE_TTL_MS,
	type ObjectSettleRequest,
	type RateLimitSnapshot,
	type ResolvedLimits,
	type Usage,
} from "./limiter";
import { moreRestrictive } from "./bucket-specs";
import { type RejectionNotes, scopeKey } from "./rejection-notes";

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
 * Output tokens are not leased: every grant requires the output buckets out of debt, and actual
 * usage is batched and sent with the next call, at the latest once it is `ttlMs` old or
 * `maxFraction` of the output limit. Acceleration counts granted units when granted, and a grant
 * is capped at the meter's headroom. Exact mode has no overshoot.
 */

/** What lease mode needs from the object, with the client's time bound already applied. */
export interface LeaseCalls {
	lease(orgId: string, request: LeaseRequest): Promise<LeaseDecision>;
	settle(orgId: string, request: ObjectSettleRequest): Promise<void>;
}

/** Tuning of lease mode. */
export interface LeaseOptions {
	/** How long a slice may be spent, ms (default 5000). */
	readonly ttlMs?: number;
	/** The largest slice, as a fraction of the limit (default 0.05). */
	readonly maxFraction?: number;
	/** Ask for the next slice when this fraction of the current one is left (default 0.25). */
	readonly lowWater?: number;
}

interface Slice {
	requests: number;
	inputTokens: number;
	readonly granted: number;
	readonly expiresAt: number;
}

interface Scope {
	slices: Slice[];
	/** The next slice's request count: doubled while slices go fast, cut to what was used when one expires. */
	size: number;
	lastGrantAt: number;
	/** Requests waiting for the renewal in flight. */
	waiting: number;
	averageInput: number;
	renewal: Promise<void> | undefined;
	returned: { requests: number; inputTokens: number };
	pending: { inputTokens: number; outputTokens: number; since: number | undefined };
	snapshot: RateLimitSnapshot | undefined;
}

const MAX_SCOPES = 10_000;

/** The isolate's leases, one per organisation (and workspace with limits of its own). */
export class LeaseClient {
	readonly #scopes = new BoundedMap<string, Scope>(MAX_SCOPES);
	readonly #ttlMs: number;
	readonly #maxFraction: number;
	readonly #lowWater: number;

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
	}

	/**
	 * Admits from a local slice, or from a new one. One renewal per scope is in flight at a time:
	 * concurrent requests wait for it and spend what it brought before asking again.
	 */
	async admit(orgId: string, workspaceId: string | undefined, limits: ResolvedLimits, inputTokens: number): Promise<Decision> {
		const scope = this.#scope(scopeKey(orgId, limits.workspace?.id));
		const cost: Cost = { requests: 1, inputTokens, outputTokens: 0 };
		scope.averageInput += (inputTokens - scope.averageInput) * 0.2;
		// Every pass either admits, refuses, or waits for a renewal that serves at least its initiator.
		for (;;) {
			const local = this.#spend(scope, orgId, workspaceId, cost, limits);
			if (local !== undefined) return local;
			const noted = this.notes?.find(orgId, workspaceId, cost, this.now());
			if (noted !== undefined) return noted;
			if (scope.renewal === undefined) break;
			scope.waiting++;
			await scope.renewal;
			scope.waiting--;
		}
		const call = this.#call(scope, orgId, limits, cost, true);
		this.#inFlight(scope, call);
		const decision = await call;
		if (!decision.admitted) {
			this.notes?.remember(orgId, workspaceId, cost, decision, this.now());
			return decision;
		}
		return this.#admission(scope, orgId, workspaceId, cost);
	}

	/** Batches the correction; sends it when it is old or large enough. */
	async settle(orgId: string, limits: ResolvedLimits, reservation: Cost, usage: Usage): Promise<void> {
		const scope = this.#scope(scopeKey(orgId, limits.workspace?.id));
		const now = this.now();
		scope.pending.inputTokens += usage.inputTokens - reservation.inputTokens;
		scope.pending.outputTokens += usage.outputTokens - reservation.outputTokens;
		scope.pending.since ??= now;
		const large = scope.pending.outputTokens >= Math.max(1, Math.floor(limits.organization.outputTokensPerMinute * this.#maxFraction));
		if (!large && now - scope.pending.since < this.#ttlMs) return;
		const sent = takePending(scope);
		try {
			await this.calls.settle(orgId, { orgId, limits, ...sent });
		} catch (error) {
			restoreDebits(scope, sent);
			throw error;
		}
	}

	#spend(scope: Scope, orgId: string, workspaceId: string | undefined, cost: Cost, limits: ResolvedLimits): Decision | undefined {
		const now = this.now();
		this.#expire(scope, now);
		const slice = scope.slices.find((s) => s.requests >= cost.requests && s.inputTokens >= cost.inputTokens);
		if (slice === undefined || scope.snapshot === undefined) return undefined;
		slice.requests -= cost.requests;
		slice.inputTokens -= cost.inputTokens;
		const left = scope.slices.reduce((sum, s) => sum + s.requests, 0);
		if (scope.renewal === undefined && left < this.#lowWater * scope.size) this.#renewAhead(scope, orgId, limits);
		return this.#admission(scope, orgId, workspaceId, cost);
	}

	/** Moves expired slices' leftovers to what the next call returns, and sizes the next slice by use. */
	#expire(scope: Scope, now: number): void {
		while (scope.slices[0] !== undefined && scope.slices[0].expiresAt <= now) {
			const slice = scope.slices[0];
			scope.slices.shift();
			scope.returned.requests += slice.requests;
			scope.returned.inputTokens += slice.inputTokens;
			if (slice.requests > 0) scope.size = Math.max(1, slice.granted - slice.requests);
		}
	}

	#renewAhead(scope: Scope, orgId: string, limits: ResolvedLimits): void {
		const need: Cost = { requests: 1, inputTokens: 0, outputTokens: 0 };
		const call = this.#call(scope, orgId, limits, need, false).then((decision) => {
			if (!decision.admitted) this.notes?.remember(orgId, limits.workspace?.id, need, decision, this.now());
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
	async #call(scope: Scope, orgId: string, limits: ResolvedLimits, need: Cost, spendNeed: boolean): Promise<LeaseDecision> {
		const start = this.now();
		const largest = maxSlice(limits, "requestsPerMinute", this.#maxFraction);
		// Slices that last less than half their time: ask for twice as much.
		if (start - scope.lastGrantAt < this.#ttlMs / 2) scope.size = Math.min(scope.size * 2, largest);
		const inputCeiling = maxSlice(limits, "inputTokensPerMinute", this.#maxFraction);
		const held = scope.slices.reduce((sum, slice) => sum + slice.requests, 0);
		const ceiling = Math.min(
			largest,
			// No more requests than the input tokens of a slice cover, and never more than two slices held.
			scope.averageInput > 0 ? Math.floor(inputCeiling / scope.averageInput) : largest,
			2 * largest - held,
		);
		const requests = Math.max(need.requests, Math.min(Math.max(scope.size, scope.waiting + need.requests), ceiling));
		const want: Cost = {
			requests,
			inputTokens: Math.max(need.inputTokens, Math.min(inputCeiling, Math.ceil(scope.averageInput * requests))),
			outputTokens: 0,
		};
		const returned = scope.returned;
		scope.returned = { requests: 0, inputTokens: 0 };
		const usage = takePending(scope);
		let decision: LeaseDecision;
		try {
			decision = await this.calls.lease(orgId, { orgId, limits, need, want, returned, usage, ttlMs: this.#ttlMs });
		} catch (error) {
			// Returned units may have been credited already: drop them rather than risk twice.
			restoreDebits(scope, usage);
			throw error;
		}
		if (!decision.admitted) return decision;
		const taken = spendNeed ? need : { requests: 0, inputTokens: 0 };
		scope.slices.push({
			requests: decision.units.requests - taken.requests,
			inputTokens: decision.units.inputTokens - taken.inputTokens,
			granted: decision.units.requests,
			expiresAt: start + decision.ttlMs,
		});
		scope.snapshot = decision.snapshot;
		scope.lastGrantAt = start;
		return decision;
	}

	#admission(scope: Scope, orgId: string, workspaceId: string | undefined, cost: Cost): Decision {
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
		return {
			admitted: true,
			reservation: { orgId, workspaceId, inputTokens: cost.inputTokens, outputTokens: 0, via: "lease" },
			snapshot: {
				requests: { ...snapshot.requests, remaining: snapshot.requests.remaining + requests },
				inputTokens: input,
				outputTokens: output,
				tokens: moreRestrictive(input, output),
			},
			source: "lease",
		};
	}

	#scope(key: string): Scope {
		let scope = this.#scopes.get(key);
		if (scope === undefined) {
			scope = {
				slices: [],
				size: 1,
				lastGrantAt: Number.NEGATIVE_INFINITY,
				waiting: 0,
				averageInput: 0,
				renewal: undefined,
				returned: { requests: 0, inputTokens: 0 },
				pending: { inputTokens: 0, outputTokens: 0, since: undefined },
				snapshot: undefined,
			};
			this.#scopes.set(key, scope);
		}
		return scope;
	}
}

/** The largest slice of one limit: `fraction` of the stricter of the organisation's and workspace's. */
function maxSlice(limits: ResolvedLimits, field: "requestsPerMinute" | "inputTokensPerMinute", fraction: number): number {
	const organization = limits.organization[field];
	return Math.max(1, Math.floor(Math.min(organization, limits.workspace?.limits[field] ?? organization) * fraction));
}

function takePending(scope: Scope): { inputTokens: number; outputTokens: number } {
	const { inputTokens, outputTokens } = scope.pending;
	scope.pending = { inputTokens: 0, outputTokens: 0, since: undefined };
	return { inputTokens, outputTokens };
}

/** After a failed call: keep owed usage for the next one, drop credits (they may have landed). */
function restoreDebits(scope: Scope, sent: { inputTokens: number; outputTokens: number }): void {
	scope.pending.inputTokens += Math.max(0, sent.inputTokens);
	scope.pending.outputTokens += Math.max(0, sent.outputTokens);
	scope.pending.since ??= 0;
}
