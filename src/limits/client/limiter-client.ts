import { TIMED_OUT, within } from "../../lib/within";
import { waitUntil as runtimeWaitUntil } from "cloudflare:workers";
import { batchClaimId } from "../claims/claim-book";
import { type AdmitContext, ConsoleLink } from "../console/console-link";
import type { UsageDetail } from "../console/usage-tally";
import {
	type AdmitRequest,
	type Cost,
	type Decision,
	type GrowDecision,
	type Limiter,
	LimiterUnavailableError,
	type PoolCorrection,
	type Reservation,
	type SettleClaimResult,
	type SettleResult,
	type Usage,
} from "../decisions";
import { resolveLimits, type TierTable } from "../rates/tiers";
import type { SpendCharge } from "../spend/spend-ledger";
import type { LeaseDecision, LeaseRequest, ObjectAdmitRequest, ObjectGrowRequest, ObjectSettleClaimRequest, ObjectSettleRequest } from "../usage-object/rpc";
import { LeaseClient, type LeaseOptions } from "./lease-client";
import { RejectionNotes } from "./rejection-notes";

/** The usage object's RPC methods, as a stub exposes them. */
export interface UsageStub {
	admit(request: ObjectAdmitRequest): Promise<Decision>;
	grow(request: ObjectGrowRequest): Promise<GrowDecision>;
	settleClaim(request: ObjectSettleClaimRequest): Promise<SettleClaimResult>;
	holdForBatch(request: { orgId: string; claimId: string; batchId: string }): Promise<{ held: boolean }>;
	/** Older objects (and test doubles) answer nothing. */
	settle(request: ObjectSettleRequest): Promise<SettleResult | undefined> | Promise<void>;
	lease(request: LeaseRequest): Promise<LeaseDecision>;
}

/** The Durable Object namespace of `UsageObject` (or a test double of it). */
export interface UsageNamespace {
	idFromName(name: string): DurableObjectId;
	get(id: DurableObjectId): UsageStub;
}

/** `exact`: one object call per request, no overshoot. `lease`: slices of allowance spent in the isolate. */
export type LimiterMode = "exact" | "lease";

/** How the client is built. */
export interface LimiterClientOptions {
	readonly namespace: UsageNamespace;
	readonly tiers: TierTable;
	/** Default `exact`. */
	readonly mode?: LimiterMode;
	/** The time bound on every object call, ms (default 500). */
	readonly timeoutMs?: number;
	readonly lease?: LeaseOptions;
	/** Keep a note of limited organisations and refuse locally until their retry time (default true). */
	readonly rememberRejections?: boolean;
	/** The isolate's clock (default `Date.now`). */
	readonly now?: () => number;
	/** Keeps a background lease renewal alive (default: `waitUntil` from `cloudflare:workers`). */
	readonly waitUntil?: (promise: Promise<unknown>) => void;
}

/** Counters for benchmarks and tests. */
export interface LimiterStats {
	admits: number;
	objectCalls: number;
}

/**
 * The only caller of the usage object. Exact mode sends every admission to the organisation's
 * object (and every settlement with something to correct); lease mode spends slices of allowance
 * locally (see `lease-client.ts` for its overshoot bound). Both refuse locally while a remembered
 * rejection stands. Every object call is bounded by `timeoutMs`; a call that fails, is overloaded
 * or times out throws {@link LimiterUnavailableError}, and the route's failure policy decides.
 */
export class LimiterClient implements Limiter {
	readonly stats: LimiterStats = { admits: 0, objectCalls: 0 };
	readonly #options: LimiterClientOptions;
	readonly #timeoutMs: number;
	readonly #now: () => number;
	readonly #notes: RejectionNotes | undefined;
	readonly #lease: LeaseClient | undefined;
	/** The operator console's link: revoked keys, and the tally every object call carries. */
	readonly #console: ConsoleLink;

	constructor(options: LimiterClientOptions) {
		this.#options = options;
		this.#timeoutMs = options.timeoutMs ?? 500;
		this.#now = options.now ?? Date.now;
		this.#notes = options.rememberRejections === false ? undefined : new RejectionNotes();
		this.#console = new ConsoleLink(this.#now, options.mode === "lease" ? "lease" : "exact");
		if (options.mode === "lease") {
			const calls = {
				lease: (orgId: string, request: LeaseRequest) => this.#call(orgId, (stub) => stub.lease(request)),
				settle: (orgId: string, request: ObjectSettleRequest) =>
					this.#call(orgId, async (stub): Promise<SettleResult | undefined> => (await stub.settle(request)) ?? undefined),
			};
			this.#lease = new LeaseClient(calls, this.#notes, this.#now, options.waitUntil ?? runtimeWaitUntil, options.lease);
		}
	}

	/** Stops a key this isolate knows is revoked (a `RevokedKeyError`, which `keys/` answers with `401`), then decides; the console counts the outcome. */
	admit(request: AdmitRequest & AdmitContext): Promise<Decision> {
		return this.#console.admit(request, () => this.#admit(request));
	}

	async #admit(request: AdmitRequest): Promise<Decision> {
		this.stats.admits++;
		const inputTokens = units(request.inputTokens, "inputTokens");
		const limits = resolveLimits(this.#options.tiers, request.orgId, request.workspaceId, request.family);
		const who = { workspaceId: request.workspaceId, keyId: request.keyId };
		const claim = request.claim;
		// Budgets, and the pools of a model not known yet, are claimed at the object in either mode: a lease holds neither.
		const exact = this.#lease === undefined || (claim !== undefined && (claim.atObject === true || (claim.alsoFamilies?.length ?? 0) > 0 || limits.budgets !== undefined));
		if (!exact && this.#lease !== undefined) return this.#lease.admit(request.orgId, who, limits, inputTokens, units(request.outputTokens ?? 0, "outputTokens"));
		const cost: Cost = { requests: 1, inputTokens, outputTokens: units(request.outputTokens ?? 0, "outputTokens") };
		const noteScope = { ...who, family: limits.pool?.family };
		const noted = this.#notes?.find(request.orgId, noteScope, cost, this.#now());
		if (noted !== undefined) return noted;
		const terms =
			claim === undefined
				? undefined
				: {
						id: crypto.randomUUID(),
						nanos: units(claim.nanos, "claim.nanos"),
						pools: (claim.alsoFamilies ?? []).map((family) => resolveLimits(this.#options.tiers, request.orgId, request.workspaceId, family)),
					};
		const decision = await this.#call(request.orgId, (stub) =>
			stub.admit({ orgId: request.orgId, limits, cost, workspaceId: request.workspaceId, keyId: request.keyId, ...(terms === undefined ? {} : { claim: terms }) }),
		);
		if (!decision.admitted) {
			this.#notes?.remember(request.orgId, noteScope, cost, decision, this.#now());
			return decision;
		}
		return { ...decision, reservation: { ...decision.reservation, workspaceId: request.workspaceId, keyId: request.keyId } };
	}

	/**
	 * Reconciles an admitted request with its actual usage: the estimate is replaced by the counted
	 * input, output is debited, a request refused after admission (`counted: false`) gets its
	 * request unit back, a request whose model belongs to another pool than the one charged moves
	 * there, and its cost is added to the spend. Exact mode sends it at once; lease mode batches it.
	 */
	async settle(reservation: Reservation, usage: Usage & UsageDetail): Promise<void> {
		const actual = { inputTokens: units(usage.inputTokens, "inputTokens"), outputTokens: units(usage.outputTokens, "outputTokens") };
		this.#console.settled(reservation.orgId, usage);
		const tiers = this.#options.tiers;
		const admitted = resolveLimits(tiers, reservation.orgId, reservation.workspaceId, reservation.family);
		const settled = usage.family === undefined ? admitted : resolveLimits(tiers, reservation.orgId, reservation.workspaceId, usage.family ?? undefined);
		const requests = usage.counted === false ? 0 : 1;
		const corrections: PoolCorrection[] =
			admitted.pool?.family === settled.pool?.family
				? [
						{
							limits: admitted,
							requests: requests - 1,
							inputTokens: actual.inputTokens - reservation.inputTokens,
							outputTokens: actual.outputTokens - reservation.outputTokens,
						},
					]
				: [
						{ limits: admitted, requests: -1, inputTokens: -reservation.inputTokens, outputTokens: -reservation.outputTokens },
						{ limits: settled, requests, inputTokens: actual.inputTokens, outputTokens: actual.outputTokens },
					];
		const nanos = usage.costNanos ?? 0;
		if (!Number.isSafeInteger(nanos) || nanos < 0) throw new RangeError(`costNanos must be a whole number of nano-dollars, 0 or more, got ${nanos}`);
		const spend: SpendCharge[] = nanos > 0 ? [{ workspaceId: reservation.workspaceId, keyId: reservation.keyId, nanos }] : [];
		if (reservation.via === "lease" && this.#lease !== undefined) return this.#lease.settle(reservation.orgId, corrections, spend);
		const [first, ...moves] = corrections as [PoolCorrection, ...PoolCorrection[]];
		const nothing = moves.length === 0 && first.requests === 0 && first.inputTokens === 0 && first.outputTokens === 0 && spend.length === 0;
		if (nothing) return;
		await this.#call(reservation.orgId, async (stub) => {
			await stub.settle({
				orgId: reservation.orgId,
				limits: first.limits,
				requests: first.requests,
				inputTokens: first.inputTokens,
				outputTokens: first.outputTokens,
				...(moves.length > 0 ? { moves } : {}),
				...(spend.length > 0 ? { spend } : {}),
			});
		});
	}

	/**
	 * Grows a claim: more input (a body arriving), more output and money (its `max_tokens`, read at
	 * the body's end), and with `family` the one pool it lands in. A lease-mode admission grows from
	 * the isolate's slices. Refused: nothing changed.
	 */
	async grow(reservation: Reservation, cost: { inputTokens: number; outputTokens: number; nanos: number }, family?: string | null): Promise<GrowDecision> {
		const inputTokens = units(cost.inputTokens, "inputTokens");
		const outputTokens = units(cost.outputTokens, "outputTokens");
		const nanos = units(cost.nanos, "nanos");
		if (reservation.claimId === undefined) {
			if (this.#lease === undefined || reservation.via !== "lease") throw new Error("only a claim, or a lease-mode admission, can grow");
			const limits = resolveLimits(this.#options.tiers, reservation.orgId, reservation.workspaceId, reservation.family);
			return this.#lease.grow(reservation.orgId, { workspaceId: reservation.workspaceId, keyId: reservation.keyId }, limits, inputTokens, outputTokens);
		}
		const claimId = reservation.claimId;
		return this.#call(reservation.orgId, (stub) =>
			stub.grow({
				orgId: reservation.orgId,
				claimId,
				cost: { requests: 0, inputTokens, outputTokens },
				nanos,
				...(family === undefined ? {} : { pool: { limits: resolveLimits(this.#options.tiers, reservation.orgId, reservation.workspaceId, family ?? undefined) } }),
			}),
		);
	}

	/**
	 * Settles a claim with what was used, in total: the object replaces the claim, once; a second
	 * settlement of the same claim changes nothing. `family`: the pool the usage lands in.
	 */
	async settleClaim(reservation: Reservation, used: Usage & UsageDetail): Promise<SettleClaimResult> {
		const claimId = reservation.claimId;
		if (claimId === undefined) throw new Error("settleClaim needs a claim");
		this.#console.settled(reservation.orgId, used);
		const family = used.family === undefined ? reservation.family : (used.family ?? undefined);
		const limits = resolveLimits(this.#options.tiers, reservation.orgId, reservation.workspaceId, family);
		const nanos = used.costNanos ?? 0;
		if (!Number.isSafeInteger(nanos) || nanos < 0) throw new RangeError(`costNanos must be a whole number of nano-dollars, 0 or more, got ${nanos}`);
		const cost: Cost = {
			requests: used.counted === false ? 0 : 1,
			inputTokens: units(used.inputTokens, "inputTokens"),
			outputTokens: units(used.outputTokens, "outputTokens"),
		};
		return this.#call(reservation.orgId, (stub) =>
			stub.settleClaim({
				orgId: reservation.orgId,
				claimId,
				limits,
				used: cost,
				...(nanos > 0 ? { spend: [{ workspaceId: reservation.workspaceId, keyId: reservation.keyId, nanos }] } : {}),
			}),
		);
	}

	/** Hands a created batch its creation request's claim, held at the object until the batch's results are read. */
	async holdForBatch(reservation: Reservation, batchId: string): Promise<boolean> {
		const claimId = reservation.claimId;
		if (claimId === undefined) throw new Error("only a claim held at the object can be held for a batch");
		const answer = await this.#call(reservation.orgId, (stub) => stub.holdForBatch({ orgId: reservation.orgId, claimId, batchId }));
		return answer.held;
	}

	/** Settles a batch's claim with its results' usage, once: a batch already settled (or never held) changes nothing. */
	async settleBatch(orgId: string, batchId: string, used: { inputTokens: number; outputTokens: number; costNanos: number }): Promise<SettleClaimResult> {
		const limits = resolveLimits(this.#options.tiers, orgId);
		const cost: Cost = { requests: 1, inputTokens: units(used.inputTokens, "inputTokens"), outputTokens: units(used.outputTokens, "outputTokens") };
		const nanos = units(used.costNanos, "costNanos");
		return this.#call(orgId, (stub) =>
			stub.settleClaim({ orgId, claimId: batchClaimId(batchId), limits, used: cost, ...(nanos > 0 ? { spend: [{ nanos }] } : {}) }),
		);
	}

	/** One object call, bounded by the timeout; every failure becomes a {@link LimiterUnavailableError}. */
	async #call<T>(orgId: string, run: (stub: UsageStub) => Promise<T>): Promise<T> {
		this.stats.objectCalls++;
		let answer: T | typeof TIMED_OUT;
		try {
			const namespace = this.#options.namespace;
			answer = await within(run(this.#console.wrap(orgId, namespace.get(namespace.idFromName(orgId)))), this.#timeoutMs);
		} catch (error) {
			const kind = isOverloaded(error) ? "overloaded" : "error";
			throw new LimiterUnavailableError(kind, orgId, `the usage object of ${orgId} failed: ${String(error)}`, error);
		}
		if (answer === TIMED_OUT) {
			throw new LimiterUnavailableError("timeout", orgId, `the usage object of ${orgId} did not answer within ${this.#timeoutMs} ms`);
		}
		return answer;
	}
}

/** A limiter client over `options.namespace`; see {@link LimiterClient}. */
export function createLimiterClient(options: LimiterClientOptions): LimiterClient {
	return new LimiterClient(options);
}

function units(value: number, name: string): number {
	if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
		throw new RangeError(`${name} must be a number of tokens, 0 or more, got ${String(value)}`);
	}
	return Math.ceil(value);
}

/** Durable Object errors carry `overloaded: true` when the object is over its capacity. */
function isOverloaded(error: unknown): boolean {
	return typeof error === "object" && error !== null && "overloaded" in error && error.overloaded === true;
}
