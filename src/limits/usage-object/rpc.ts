import type { Cost, PoolCorrection, RateLimitSnapshot, Rejection, ResolvedLimits } from "../decisions";
import type { BudgetHit } from "../spend/money";
import type { SpendCharge } from "../spend/spend-ledger";

/**
 * What the usage object's RPC methods take and answer, beyond the decisions themselves
 * (`../decisions.ts`): the object (`usage-object.ts`) implements them, `client/` calls them.
 */

/** `admit` RPC: judge `cost` against `limits` (and the budgets of the workspace and key named). */
export interface ObjectAdmitRequest {
	readonly orgId: string;
	readonly limits: ResolvedLimits;
	readonly cost: Cost;
	readonly workspaceId?: string | undefined;
	readonly keyId?: string | undefined;
	/** Held as a claim until settled: its id, its money, and the other pools it is claimed in too. */
	readonly claim?: ClaimTerms | undefined;
}

/** What a claim holds beyond its units. */
export interface ClaimTerms {
	readonly id: string;
	/** Money held against every budget of the organisation, workspace and key, nano-dollars. */
	readonly nanos: number;
	/** Pools claimed besides `limits` (every pool a request of unknown model could land in). */
	readonly pools?: readonly ResolvedLimits[] | undefined;
}

/** `grow` RPC: more units and money for a claim; with `pool`, the claim leaves every other pool first. */
export interface ObjectGrowRequest {
	readonly orgId: string;
	readonly claimId: string;
	readonly cost: Cost;
	readonly nanos: number;
	/** The pool the request now lands in (its model is known). */
	readonly pool?: { readonly limits: ResolvedLimits } | undefined;
}

/** `settleClaim` RPC: what a claimed request used, replacing its claim (exactly once: a second call finds none). */
export interface ObjectSettleClaimRequest {
	readonly orgId: string;
	readonly claimId: string;
	/** The pool the usage lands in (the reported model's). */
	readonly limits: ResolvedLimits;
	/** What was used, in total (not a correction). */
	readonly used: Cost;
	/** What it cost, added to the spend. */
	readonly spend?: readonly SpendCharge[] | undefined;
}

/** `settle` RPC: signed corrections (actual minus charged) to the token buckets. */
export interface ObjectSettleRequest {
	readonly orgId: string;
	readonly limits: ResolvedLimits;
	readonly inputTokens: number;
	readonly outputTokens: number;
	/** A correction to the request count: -1 gives back a request that a later check refused. */
	readonly requests?: number;
	/** Corrections to other pools, netted with the first (a request settled to another family's pool). */
	readonly moves?: readonly PoolCorrection[] | undefined;
	/** Costs to add to the spend of the organisation and of the workspaces and keys named. */
	readonly spend?: readonly SpendCharge[] | undefined;
	/** Unspent units of leases the isolate gives back (a dropped lease). */
	readonly returned?: (Pick<Cost, "requests" | "inputTokens"> & { readonly outputTokens?: number }) | undefined;
}

/** `lease` RPC: settle what the isolate owes or returns, then grant a slice of allowance. */
export interface LeaseRequest {
	readonly orgId: string;
	readonly limits: ResolvedLimits;
	/** The least grant that is any use (the request waiting on it); refused if not available. */
	readonly need: Cost;
	/** The grant the isolate would like (at least `need`); granted as far as available. */
	readonly want: Cost;
	/** Unspent units of expired leases, credited back before the grant. */
	readonly returned: Pick<Cost, "requests" | "inputTokens"> & { readonly outputTokens?: number };
	/** Batched signed usage corrections, applied before the grant (`requests`: refunds and moves). */
	readonly usage: Pick<Cost, "inputTokens" | "outputTokens"> & { readonly requests?: number };
	/** How long the isolate may spend the grant, ms (clamped by the object). */
	readonly ttlMs: number;
	/** The workspace and key of the request waiting on the grant: their budgets apply. */
	readonly workspaceId?: string | undefined;
	readonly keyId?: string | undefined;
	/** Batched costs, added before the grant. */
	readonly spend?: readonly SpendCharge[] | undefined;
}

/** The longest a lease may be spent, ms. */
export const MAX_LEASE_TTL_MS = 60_000;

/** A lease: units charged to the buckets now, spendable in the isolate for `ttlMs`. */
export interface LeaseGrant {
	readonly admitted: true;
	readonly units: Cost;
	readonly ttlMs: number;
	readonly snapshot: RateLimitSnapshot;
	/** The organisation's budgets that are spent now: the isolate refuses their scopes locally. */
	readonly exhausted?: readonly BudgetHit[] | undefined;
}

/** `lease` RPC answer. */
export type LeaseDecision = LeaseGrant | Rejection;
