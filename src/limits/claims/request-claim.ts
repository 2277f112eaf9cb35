import type { GuardError } from "../../errors/guard-error";
import type { PumpClaim } from "../../lib/counting-pump";
import { batchResultsUsage } from "../../lib/batch-results";
import { type BatchScan, scanBatchRequests } from "../../lib/json/batch-requests";
import { type FieldScan, scanTopLevelFields } from "../../lib/json/top-level-fields";
import type { RequestState } from "../../lib/request-state";
import type { ReportedUsage } from "../../lib/usage-tap";
import type { GrowDecision, Limiter, Rejection, Reservation } from "../decisions";
import type { Family } from "../rates/families";
import { familyFor, type TierTable, tierOf } from "../rates/tiers";
import { batchCostOf, costOf, type Price, usd } from "../spend/money";
import { batchClaim, claimCost, pricesFor, tokensOf } from "./claim-price";

/** How a request ended, as its claim is settled. */
export type ClaimEnd =
	/** The origin never received the request (it could not be reached): everything is given back. */
	| { readonly kind: "not-received" }
	/** Refused by the guard after admission (a body over a bound, a client that left, a timeout): the request unit and the input read are kept. */
	| { readonly kind: "refused"; readonly bytesRead: number }
	/** The origin answered: `usage` is what its answer reported, as far as it was read. */
	| { readonly kind: "answered"; readonly status: number; readonly shape: "json" | "sse" | "other"; readonly usage: ReportedUsage; readonly bytesRead: number };

/**
 * What the counting pump needs from a claim: input claimed as the body arrives; when admission
 * could not read the body's `model` and `max_tokens`, they are read as it passes and claimed at
 * its end (output and money, in the model's pool) before its last slice is handed on.
 */
export interface BodyGrowth extends PumpClaim {
	/** The `429` to answer when a growth was refused (its connection held open until `holdOpenUntil`). */
	refusal(holdOpenUntil?: Promise<unknown>): GuardError;
}

/** What a claim knows about the request it was made for. */
export interface ClaimContext {
	/** The isolate's limiter client. */
	readonly client: Limiter;
	readonly tiers: TierTable;
	readonly orgId: string;
	readonly reservation: Reservation;
	readonly state: RequestState;
	readonly waitUntil: (promise: Promise<unknown>) => void;
	/** What the route's bodies are: Messages or batches of them (input and output tokens, money), or neither. */
	readonly meter: "messages" | "batch" | undefined;
	/**
	 * The model and `max_tokens` as admission read them; `known` false when the body's whole object
	 * was not seen (what was seen so far is a hint: a later duplicate may replace it).
	 */
	readonly fields: { readonly known: boolean; readonly model?: string | undefined; readonly maxTokens: number };
	/** Input, output and money claimed at admission. */
	readonly claimed: { readonly inputTokens: number; readonly outputTokens: number; readonly nanos: number };
	/** Whether the body's length was unknown at admission (it grows as it arrives). */
	readonly grows: boolean;
	/** Builds the `429` for a refused growth. */
	readonly refuse: (rejection: Rejection | undefined, holdOpenUntil?: Promise<unknown>) => GuardError;
}

/** Growth steps: at least what was read, and ahead by doubling, at most this many tokens (1 MiB of body) a step. */
const MAX_STEP_TOKENS = 262_144;

/**
 * A request's claim, from admission to its one settlement: the only owner of it. `settle` may be
 * called from every path that ends the request; the first call settles and every later one does
 * nothing, so a path that ends twice cannot charge twice and one that forgets is caught by the
 * pipeline's last resort (which settles as refused).
 */
export class RequestClaim {
	readonly growth: BodyGrowth | undefined;
	#inputTokens: number;
	#outputTokens: number;
	#nanos: number;
	#family: string | null | undefined;
	#model: string | undefined;
	#settled = false;
	#answering = false;
	#rejection: Rejection | undefined;
	#scan: FieldScan | undefined;
	#batchScan: BatchScan | undefined;
	/** A growth asked for ahead of the body, until the usage object answers it: the settlement waits for it. */
	#growing: Promise<boolean> | undefined;
	/** A growth step larger than the body needed was refused: the rest of the body claims only what it reads. */
	#stepsRefused = false;

	constructor(private readonly context: ClaimContext) {
		this.#inputTokens = context.claimed.inputTokens;
		this.#outputTokens = context.claimed.outputTokens;
		this.#nanos = context.claimed.nanos;
		this.#model = context.fields.model;
		const needsFields = context.meter !== undefined && !context.fields.known;
		this.growth = context.grows || needsFields ? this.#bodyGrowth(needsFields) : undefined;
	}

	/** Whether the claim was settled. */
	get settled(): boolean {
		return this.#settled;
	}

	/** The origin's answer is being handed on: from now on, its end settles the claim (a client leaving included). */
	answering(): void {
		this.#answering = true;
	}

	/**
	 * The client left. Before the answer started, nothing else may run for the request (the runtime
	 * can stop it), so the claim is settled now, as refused after admission; once answering, the
	 * answer's end settles it with what was delivered.
	 */
	clientLeft(bytesRead: number): void {
		if (!this.#answering) this.settle({ kind: "refused", bytesRead });
	}

	/** Settles the claim, once: every later call does nothing. */
	settle(end: ClaimEnd): void {
		if (this.#settled) return;
		this.#settled = true;
		this.context.waitUntil(this.#settle(end));
	}

	async #settle(end: ClaimEnd): Promise<void> {
		const { client, reservation, state } = this.context;
		// A growth still on its way would otherwise land after the settlement, or be left out of it.
		await this.#growing;
		const used = this.#used(end);
		state.decisions.usage = {
			input_tokens: used.inputTokens,
			output_tokens: used.outputTokens,
			settled_as: used.basis,
			...(used.cacheWriteTokens === undefined ? {} : { cache_creation_input_tokens: used.cacheWriteTokens }),
			...(used.cacheReadTokens === undefined ? {} : { cache_read_input_tokens: used.cacheReadTokens }),
			...(used.model === undefined ? {} : { model: used.model.slice(0, 100) }),
		};
		if (used.costNanos > 0) state.decisions.spend = { outcome: "charged", family: used.family ?? null, cost_usd: usd(used.costNanos) };
		try {
			if (reservation.claimId !== undefined) await client.settleClaim(reservation, used);
			else await client.settle({ ...reservation, inputTokens: this.#inputTokens, outputTokens: this.#outputTokens }, used);
		} catch (error) {
			console.warn({ request_id: state.requestId, message: "usage not settled", error: String(error) });
		}
	}

	/** What the request used, by how it ended (see the README's "Usage limits"). */
	#used(end: ClaimEnd) {
		const { tiers, orgId } = this.context;
		const metered = this.context.meter !== undefined;
		// What reached the origin: the bytes read, never more than the claim covered (no slice past it is forwarded).
		const estimate = (bytes: number) => (metered ? Math.min(this.#inputTokens, tokensOf(bytes)) : 0);
		if (end.kind === "not-received") return this.#usage({ counted: false, input: 0, output: 0, nanos: 0, basis: "not-received" });
		if (end.kind === "refused" || !metered) {
			const input = estimate(end.bytesRead);
			return this.#usage({ counted: true, input, output: 0, nanos: metered ? this.#priced(undefined, input, 0) : 0, basis: end.kind === "refused" ? "refused" : "unmetered" });
		}
		const reported = end.usage;
		const model = reported.model ?? this.#model;
		const family = reported.model === undefined ? this.#knownFamily() : familyFor(tiers, orgId, reported.model);
		const extra = { model, family: family?.name ?? null, cacheReadTokens: reported.cacheReadInputTokens, cacheWriteTokens: reported.cacheCreationInputTokens };
		if (end.status >= 400) {
			const input = reported.inputTokens === undefined ? estimate(end.bytesRead) : countedInput(reported, family, tiers, orgId);
			return this.#usage({ counted: true, input, output: 0, nanos: 0, basis: "origin-error", ...extra });
		}
		if (reported.finished === true) {
			const input = reported.inputTokens === undefined ? estimate(end.bytesRead) : countedInput(reported, family, tiers, orgId);
			const output = reported.outputTokens ?? 0;
			return this.#usage({ counted: true, input, output, nanos: costOfReported(reported, family, tiers, orgId), basis: "reported", ...extra });
		}
		if (end.shape === "sse") {
			// Never 0: what passed through the guard, or what the origin said so far, whichever is more.
			const input = reported.inputTokens === undefined ? estimate(end.bytesRead) : countedInput(reported, family, tiers, orgId);
			const output = Math.max(1, reported.outputTokens ?? 0, tokensOf(reported.deliveredOutputBytes ?? 0));
			const nanos = costOfReported({ ...reported, inputTokens: reported.inputTokens ?? input, outputTokens: output }, family, tiers, orgId);
			return this.#usage({ counted: true, input, output, nanos, basis: "delivered", ...extra });
		}
		// A JSON answer cut before its usage: charged its claim (its input no more than the body read: a growth may have claimed ahead of it).
		const input = estimate(end.bytesRead);
		const unread = metered ? this.#priced(undefined, this.#inputTokens - input, 0) : 0;
		return this.#usage({ counted: true, input, output: this.#outputTokens, nanos: Math.max(0, this.#nanos - unread), basis: "claim", ...extra });
	}

	#usage(parts: {
		counted: boolean;
		input: number;
		output: number;
		nanos: number;
		basis: string;
		model?: string | undefined;
		family?: string | null | undefined;
		cacheReadTokens?: number | undefined;
		cacheWriteTokens?: number | undefined;
	}) {
		return {
			counted: parts.counted,
			inputTokens: parts.input,
			outputTokens: parts.output,
			costNanos: parts.nanos,
			family: parts.family === undefined ? this.#family : parts.family,
			basis: parts.basis,
			model: parts.model,
			cacheReadTokens: parts.cacheReadTokens,
			cacheWriteTokens: parts.cacheWriteTokens,
		};
	}

	/** The family of the model read from the request, if it was read. */
	#knownFamily(): Family | undefined {
		if (this.#model === undefined) return undefined;
		return familyFor(this.context.tiers, this.context.orgId, this.#model);
	}

	#priced(model: string | undefined, input: number, output: number): number {
		const known = model !== undefined || this.#model !== undefined;
		return claimCost(pricesFor(this.context.tiers, this.context.orgId, model ?? this.#model, known), input, output, this.context.meter === "batch");
	}

	/**
	 * A created batch takes over this request's claim, held until its results are read. Nothing is
	 * settled for the creation itself: the batch's results settle it.
	 */
	holdForBatch(batchId: string): void {
		if (this.#settled) return;
		this.#settled = true;
		const { client, reservation, state } = this.context;
		state.decisions.usage = { batch_id: batchId.slice(0, 128), held_usd: usd(this.#nanos), output_tokens_claimed: this.#outputTokens };
		this.context.waitUntil(
			client.holdForBatch(reservation, batchId).catch((error: unknown) => {
				console.warn({ request_id: state.requestId, message: "batch claim not held", error: String(error) });
			}),
		);
	}

	/**
	 * Reads a batch's results as they pass through this request's answer and, once they were read
	 * to their end, settles the batch's claim with what its succeeded lines used, at the batch
	 * price of each line's model. Results read in part settle nothing (the claim stays held, and is
	 * charged when it expires); results read again find the claim settled and charge nothing.
	 */
	batchResults(batchId: string): { push(chunk: Uint8Array): void; end(complete: boolean): void } {
		const { tiers, orgId, client, state } = this.context;
		const used = { inputTokens: 0, outputTokens: 0, costNanos: 0, lines: 0 };
		const reader = batchResultsUsage((line) => {
			if (!line.succeeded) return;
			const family = familyFor(tiers, orgId, line.model);
			const price = family?.price ?? tierOf(tiers, orgId).price;
			used.lines += 1;
			used.inputTokens += countedInput(line, family, tiers, orgId);
			used.outputTokens += line.outputTokens ?? 0;
			if (price !== undefined) {
				used.costNanos += batchCostOf(price, {
					input: line.inputTokens ?? 0,
					output: line.outputTokens ?? 0,
					cacheWrite: line.cacheCreationInputTokens ?? 0,
					cacheRead: line.cacheReadInputTokens ?? 0,
				});
			}
		});
		let ended = false;
		return {
			push: (chunk) => reader.push(chunk),
			end: (complete) => {
				if (ended) return;
				ended = true;
				reader.end();
				if (!complete) return;
				state.decisions.batch = { batch_id: batchId.slice(0, 128), lines: used.lines, input_tokens: used.inputTokens, output_tokens: used.outputTokens, cost_usd: usd(used.costNanos) };
				this.context.waitUntil(
					client.settleBatch(orgId, batchId, used).catch((error: unknown) => {
						console.warn({ request_id: state.requestId, message: "batch not settled", error: String(error) });
					}),
				);
			},
		};
	}

	#bodyGrowth(needsFields: boolean): BodyGrowth {
		const { client, reservation } = this.context;
		const batch = this.context.meter === "batch";
		if (needsFields && !batch) this.#scan = scanTopLevelFields(["model", "max_tokens"]);
		if (needsFields && batch) this.#batchScan = scanBatchRequests();
		const ask = async (input: number, output: number, nanos: number, family?: string | null): Promise<boolean> => {
			let decision: GrowDecision;
			try {
				decision = await client.grow(reservation, { inputTokens: input, outputTokens: output, nanos }, family);
			} catch (error) {
				// The limiter failed mid-upload: refusing is the only answer that cannot overspend.
				console.warn({ request_id: this.context.state.requestId, message: "claim could not grow", error: String(error) });
				return false;
			}
			if (!decision.admitted) {
				this.#rejection = decision;
				return false;
			}
			this.#inputTokens += input;
			this.#outputTokens += output;
			this.#nanos += nanos;
			if (family !== undefined) this.#family = family;
			return true;
		};
		const growth: BodyGrowth = {
			covered: () => this.#inputTokens * 4,
			ahead: (bytes) => {
				// A body of known length is claimed whole at admission: nothing to ask ahead for.
				if (!this.context.grows || this.#growing !== undefined || this.#settled || this.#stepsRefused) return;
				const step = Math.min(this.#inputTokens, MAX_STEP_TOKENS);
				// Half a step before the body reaches what is covered, the next step is asked for while the body goes on.
				if (step <= 0 || tokensOf(bytes) < this.#inputTokens - step / 2) return;
				const asking = ask(step, 0, this.#priced(undefined, step, 0));
				this.#growing = asking;
				asking.then((admitted) => {
					if (!admitted) this.#stepsRefused = true;
					if (this.#growing === asking) this.#growing = undefined;
				});
			},
			grow: async (bytes) => {
				await this.#growing;
				const needed = tokensOf(bytes) - this.#inputTokens;
				if (needed <= 0) return true;
				const step = this.#stepsRefused ? needed : Math.max(needed, Math.min(this.#inputTokens, MAX_STEP_TOKENS));
				if (await ask(step, 0, this.#priced(undefined, step, 0))) return true;
				if (step === needed) return false;
				this.#stepsRefused = true;
				return ask(needed, 0, this.#priced(undefined, needed, 0));
			},
			refusal: (holdOpenUntil) => this.context.refuse(this.#rejection, holdOpenUntil),
		};
		if (!needsFields) return growth;
		if (batch) {
			return {
				...growth,
				inspect: (chunk) => this.#batchScan?.push(chunk),
				finish: async (bytes) => {
					if (!(await growth.grow(bytes))) return false;
					const scan = this.#batchScan;
					scan?.end();
					if (scan?.state !== "complete") return true;
					const { output, nanos } = batchClaim(this.context.tiers, this.context.orgId, scan, this.#inputTokens);
					return ask(0, Math.max(0, output - this.#outputTokens), Math.max(0, nanos - this.#nanos));
				},
			};
		}
		return {
			...growth,
			inspect: (chunk) => this.#scan?.push(chunk),
			finish: async (bytes) => {
				if (!(await growth.grow(bytes))) return false;
				const scan = this.#scan;
				scan?.end();
				if (scan?.state !== "complete") return true;
				const model = stringField(scan, "model");
				const maxTokens = countField(scan, "max_tokens");
				this.#model = model;
				const { tiers, orgId } = this.context;
				// The pool the model lands in: a family's own, or (`null`) the organisation's.
				const family = familyFor(tiers, orgId, model);
				const pool = model === undefined ? undefined : family?.limits !== undefined ? (family?.name ?? null) : null;
				const total = claimCost(pricesFor(tiers, orgId, model, model !== undefined), this.#inputTokens, maxTokens);
				return ask(0, Math.max(0, maxTokens - this.#outputTokens), Math.max(0, total - this.#nanos), pool);
			},
		};
	}
}

function stringField(scan: FieldScan, name: string): string | undefined {
	const value = scan.fields.get(name);
	return value?.kind === "string" ? value.value : undefined;
}

function countField(scan: FieldScan, name: string): number {
	const value = scan.fields.get(name);
	return value?.kind === "number" && Number.isSafeInteger(value.value) && value.value > 0 ? value.value : 0;
}

/**
 * Input as the tier counts it toward input tokens per minute: uncached input and cache writes,
 * and cache reads only where the family (or the tier) says the API counts them.
 */
function countedInput(reported: ReportedUsage, family: Family | undefined, tiers: TierTable, orgId: string): number {
	const countReads = family?.countCacheReads ?? tierOf(tiers, orgId).countCacheReads;
	return (reported.inputTokens ?? 0) + (reported.cacheCreationInputTokens ?? 0) + (countReads ? (reported.cacheReadInputTokens ?? 0) : 0);
}

/** What the reported usage costs at the family's (or the tier's) price, nano-dollars (0 when unpriced). */
function costOfReported(reported: ReportedUsage, family: Family | undefined, tiers: TierTable, orgId: string): number {
	const price: Price | undefined = family?.price ?? tierOf(tiers, orgId).price;
	if (price === undefined) return 0;
	return costOf(price, {
		input: reported.inputTokens ?? 0,
		output: reported.outputTokens ?? 0,
		cacheWrite: reported.cacheCreationInputTokens ?? 0,
		cacheRead: reported.cacheReadInputTokens ?? 0,
	});
}
