import { type BudgetHit, type Budgets, formatUsd } from "./spend";

/**
 * The per-organisation limiter's vocabulary: limits, decisions, the {@link Limiter} interface the
 * pipeline calls, and the shapes of the Durable Object's RPC methods. Arithmetic lives in
 * `token-bucket.ts` and `acceleration.ts`, state in `usage-object.ts`, the stub in
 * `limiter-client.ts`.
 */

/** Every limit a request can hit; {@link rejectionMessage} maps each to its message. */
export type LimitName = "requests" | "input_tokens" | "output_tokens" | "acceleration" | "spend";

/**
 * Whose allowance a limit is: the organisation's tier (or one of its model families), a
 * workspace's own lower limit, or (for a spend budget only) one API key's.
 */
export type LimitScope = "organization" | "workspace" | "key";

/** The three continuously refilled buckets of a tier, each per minute (whole numbers, 1 or more). */
export interface BucketLimits {
	readonly requestsPerMinute: number;
	readonly inputTokensPerMinute: number;
	readonly outputTokensPerMinute: number;
}

/** A workspace's own limits: any subset, applied on top of (never instead of) its organisation's. */
export type WorkspaceLimits = Partial<BucketLimits>;

/** How sharply an organisation may accelerate past its own trailing baseline (per tier). */
export interface AccelerationConfig {
	/** The short window (time constant of the short-window rate), in ms. */
	readonly windowMs: number;
	/** The short-window rate may reach this multiple of the baseline rate. */
	readonly multiple: number;
	/** The short-window rate, in requests per minute, that is always allowed (lets a quiet organisation start). */
	readonly floorPerMinute: number;
	/** The trailing baseline's time constant, in ms (longer than the window). */
	readonly baselineMs: number;
}

/** Everything the Durable Object needs to judge one organisation's (and workspace's) request. */
export interface ResolvedLimits {
	readonly tier: string;
	readonly organization: BucketLimits;
	readonly workspace: { readonly id: string; readonly limits: WorkspaceLimits } | undefined;
	readonly acceleration: AccelerationConfig | undefined;
	/**
	 * The model family whose own pool the request is charged to, instead of the organisation's
	 * pool; absent for a model in no family with limits of its own.
	 */
	readonly pool?: { readonly family: string; readonly limits: BucketLimits } | undefined;
	/** The spend budgets of the organisation, the request's workspace and its key, in nano-dollars. */
	readonly budgets?: Budgets | undefined;
}

/** Units of each bucket a request takes. */
export interface Cost {
	readonly requests: number;
	readonly inputTokens: number;
	readonly outputTokens: number;
}

/** What one `anthropic-ratelimit-<name>-*` header triple says. */
export interface LimitStatus {
	/** Units per minute. */
	readonly limit: number;
	/** Whole units available now (0 when the bucket is empty or in debt). */
	readonly remaining: number;
	/** When the bucket will be full again, epoch ms. */
	readonly resetAt: number;
}

/** The header values of one decision; each is the most restrictive scope (organisation or workspace). */
export interface RateLimitSnapshot {
	readonly requests: LimitStatus;
	readonly inputTokens: LimitStatus;
	readonly outputTokens: LimitStatus;
	/** The more restrictive of input and output tokens (fewer remaining). */
	readonly tokens: LimitStatus;
}

/** Where a decision came from: a Durable Object call, a local lease, or a remembered rejection. */
export type DecisionSource = "object" | "lease" | "note";

/** What an admitted request took, handed back to {@link Limiter.settle} with the actual usage. */
export interface Reservation {
	readonly orgId: string;
	readonly workspaceId: string | undefined;
	/** The estimate charged to the input-token buckets. */
	readonly inputTokens: number;
	/** Output tokens reserved at admission (usually 0: output is debited from actual usage). */
	readonly outputTokens: number;
	/** Whether settling goes to the object at once or into the lease's batch. */
	readonly via: "object" | "lease";
	/** The API key the request came with (its spend and budget). */
	readonly keyId?: string | undefined;
	/** The family whose pool was charged at admission (absent: the organisation's pool). */
	readonly family?: string | undefined;
	/** The claim the usage object holds for it (absent: an admission with nothing to settle but a refund). */
	readonly claimId?: string | undefined;
}

/** An admitted request. */
export interface Admission {
	readonly admitted: true;
	readonly reservation: Reservation;
	readonly snapshot: RateLimitSnapshot;
	readonly source: DecisionSource;
	/** The family whose pool admitted it (absent: the organisation's pool). */
	readonly family?: string | undefined;
}

/** A refused request: nothing was charged for it. */
export interface Rejection {
	readonly admitted: false;
	/** The limit that decides when a retry can succeed (the longest wait of those hit). */
	readonly limit: LimitName;
	readonly scope: LimitScope;
	/** The limit in units per minute; for acceleration, the rate allowed right now. */
	readonly allowedPerMinute: number;
	/**
	 * Ms until the same request is admitted if nothing else changes (a retry after
	 * `ceil(ms / 1000)` seconds is), or `null` when the request alone exceeds the limit's capacity.
	 */
	readonly retryAfterMs: number | null;
	readonly snapshot: RateLimitSnapshot;
	readonly source: DecisionSource;
	/** The family whose pool was hit (absent: the organisation's pool, or a workspace's). */
	readonly family?: string | undefined;
	/** For `spend`: the budget that is spent, and when it resets. */
	readonly budget?: BudgetHit | undefined;
}

/** One decision per request. */
export type Decision = Admission | Rejection;

/** A request to admit, as the pipeline knows it before forwarding. */
export interface AdmitRequest {
	readonly orgId: string;
	readonly workspaceId?: string | undefined;
	/** Estimated input tokens (0 for routes without a prompt); reconciled by {@link Limiter.settle}. */
	readonly inputTokens: number;
	/**
	 * Output tokens to reserve up front (default 0), exact mode only: lease mode debits output
	 * tokens from actual usage alone.
	 */
	readonly outputTokens?: number | undefined;
	/** The API key the request came with: its budget applies, and its spend is counted. */
	readonly keyId?: string | undefined;
	/** The model family the request names (read before forwarding), if known. */
	readonly family?: string | undefined;
	/**
	 * Held as a claim until settled: the money it may cost, and the families whose pools it is
	 * claimed in besides `family`'s (a request whose model is not known yet). Absent: the admission
	 * is final but for a refund.
	 */
	readonly claim?: { readonly nanos: number; readonly alsoFamilies?: readonly string[] | undefined; readonly atObject?: boolean | undefined } | undefined;
}

/** The origin's actual `usage` for an admitted request. */
export interface Usage {
	/** Input tokens as the tier counts them (cache reads only where the tier says so). */
	readonly inputTokens: number;
	readonly outputTokens: number;
	/** `false` when a check after admission refused the request: its request unit is given back. */
	readonly counted?: boolean;
	/**
	 * The family of the model the origin reports (`null`: a model in no family; absent: as
	 * admitted). When its pool is not the one charged at admission, the request and its usage move
	 * to it.
	 */
	readonly family?: string | null | undefined;
	/** The request's cost, in nano-dollars, added to the spend of its organisation, workspace and key. */
	readonly costNanos?: number | undefined;
}

/** Money to add to the spend of an organisation, and of the workspace and key named. */
export interface SpendCharge {
	readonly workspaceId?: string | undefined;
	readonly keyId?: string | undefined;
	readonly nanos: number;
}

/** Signed corrections to one pool's buckets (the limits name the pool and the workspace). */
export interface PoolCorrection {
	readonly limits: ResolvedLimits;
	readonly requests: number;
	readonly inputTokens: number;
	readonly outputTokens: number;
}

/** The limiter as the pipeline sees it, in exact mode and lease mode alike. */
export interface Limiter {
	/**
	 * Decides one request; charges it only when admitted. Throws {@link LimiterUnavailableError}
	 * when the organisation's object fails or does not answer in time (the route's policy decides).
	 */
	admit(request: AdmitRequest): Promise<Decision>;
	/** Reconciles an admitted request with its actual usage. Throws {@link LimiterUnavailableError}. */
	settle(reservation: Reservation, usage: Usage): Promise<void>;
}

/** Why the limiter could not decide. */
export type UnavailableKind = "timeout" | "overloaded" | "error";

/** The organisation's Durable Object failed, was overloaded, or did not answer within the time bound. */
export class LimiterUnavailableError extends Error {
	readonly kind: UnavailableKind;
	readonly orgId: string;

	constructor(kind: UnavailableKind, orgId: string, message: string, cause?: unknown) {
		super(message, { cause });
		this.name = "LimiterUnavailableError";
		this.kind = kind;
		this.orgId = orgId;
	}
}

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

/** `grow` RPC answer. */
export type GrowDecision = { readonly admitted: true; readonly snapshot: RateLimitSnapshot } | Rejection;

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

/** `settleClaim` RPC answer. */
export interface SettleClaimResult extends SettleResult {
	/** False when no such claim was held (settled already, or expired and settled as charged). */
	readonly settled: boolean;
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

/** `settle` RPC answer: the organisation's budgets that are spent now (so isolates can refuse locally). */
export interface SettleResult {
	readonly exhausted: readonly BudgetHit[];
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
