import type { BudgetHit, Budgets } from "./spend/money";

/**
 * The usage limits' vocabulary: limits, costs, the decisions made on them, and the {@link Limiter}
 * interface the pipeline calls. Arithmetic lives in `rates/`, money in `spend/`, state in
 * `usage-object/` (its RPC shapes in `usage-object/rpc.ts`), the isolate's side in `client/`.
 */

/** Every limit a request can hit; `client/rejection-messages.ts` gives each its message. */
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
	/** Output tokens claimed at admission (the request's `max_tokens`), replaced by the actual output at settlement. */
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
	 * Output tokens to claim up front (default 0): the request's `max_tokens`, from the object or,
	 * in lease mode, from a slice.
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

/** Signed corrections to one pool's buckets (the limits name the pool and the workspace). */
export interface PoolCorrection {
	readonly limits: ResolvedLimits;
	readonly requests: number;
	readonly inputTokens: number;
	readonly outputTokens: number;
}

/** A growth's decision (`grow`): the claim grew by all that was asked, or nothing changed. */
export type GrowDecision = { readonly admitted: true; readonly snapshot: RateLimitSnapshot } | Rejection;

/** A settlement's answer: the organisation's budgets that are spent now (so isolates can refuse locally). */
export interface SettleResult {
	readonly exhausted: readonly BudgetHit[];
}

/** A claim's settlement's answer (`settleClaim`). */
export interface SettleClaimResult extends SettleResult {
	/** False when no such claim was held (settled already, or expired and settled as charged). */
	readonly settled: boolean;
}

/**
 * The limiter as the pipeline sees it, in exact mode and lease mode alike: admission, then the
 * request's claim. Every call throws {@link LimiterUnavailableError} when the organisation's object
 * fails or does not answer in time (the route's policy decides).
 */
export interface Limiter {
	/** Decides one request; charges it only when admitted. A key known to be revoked is not decided: `RevokedKeyError` (`keys/revoked.ts`). */
	admit(request: AdmitRequest): Promise<Decision>;
	/** Reconciles an admitted request with its actual usage. */
	settle(reservation: Reservation, usage: Usage): Promise<void>;
	/** Grows a claim: more input, output and money, and with `family` the one pool it lands in. Refused: nothing changed. */
	grow(reservation: Reservation, cost: { inputTokens: number; outputTokens: number; nanos: number }, family?: string | null): Promise<GrowDecision>;
	/** Settles a claim with what was used, in total, once: a second settlement changes nothing. */
	settleClaim(reservation: Reservation, used: Usage): Promise<SettleClaimResult>;
	/** Hands a created batch its creation request's claim, held until the batch's results are read. */
	holdForBatch(reservation: Reservation, batchId: string): Promise<boolean>;
	/** Settles a batch's claim with its results' usage, once. */
	settleBatch(orgId: string, batchId: string, used: { inputTokens: number; outputTokens: number; costNanos: number }): Promise<SettleClaimResult>;
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
