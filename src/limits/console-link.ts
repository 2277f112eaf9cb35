import { GuardError } from "../errors/guard-error";
import { BoundedMap } from "../lib/bounded-map";
import type { Decision, Usage } from "./limiter";
import { type RevocationBook, type RevocationList, revocationBook } from "./revocations";
import { type HistoryEntry, minuteOf } from "./usage-history";

/**
 * What the operator console needs from the request path, carried on the usage-object calls that
 * already exist, never on a call of its own: each call takes this isolate's tally of what the
 * object cannot see (lease-mode admissions, refusals decided in the isolate, actual tokens and
 * spend, the last refusal's request ID) and the version of the organisation's revocation list it
 * knows; each answer brings the list back when it changed.
 */

/** What an isolate sends with each call, in the request's `console` field. */
export interface ConsoleUplink {
	readonly tally?: readonly HistoryEntry[];
	readonly revocationsSeen?: number;
}

/** What the object answers with each call, in the answer's `console` field. */
export interface ConsoleDownlink {
	readonly revocations?: RevocationList;
}

/** A request or answer that may carry the console's fields. */
export type WithConsole<T, C> = T & { readonly console?: C };

/** What an admission may say about itself beyond {@link AdmitRequest}: its request ID, for the console. */
export interface AdmitContext {
	readonly keyId?: string | undefined;
	readonly requestId?: string | undefined;
}

/** Usage details the console shows beyond what the limits count. */
export interface UsageDetail {
	readonly cacheReadTokens?: number | undefined;
	readonly cacheWriteTokens?: number | undefined;
}

interface Counts {
	admitted: number;
	refused: Record<string, number>;
	inputTokens: number;
	cacheReadTokens: number;
	cacheWriteTokens: number;
	outputTokens: number;
	spendNanos: number;
	lastRefusal?: { requestId: string; reason: string; at: number };
}

/** Minutes a tally keeps per organisation between calls (older minutes merge into the oldest kept). */
const MAX_TALLY_MINUTES = 60;

/** One isolate's counts, per organisation and minute, until a call to the object takes them. */
export class UsageTally {
	readonly #orgs = new BoundedMap<string, Map<number, Counts>>(10_000);

	admitted(orgId: string, now: number): void {
		this.#counts(orgId, now).admitted++;
	}

	/** A refusal: counted here when the object did not count it, and its request ID kept either way. */
	refused(orgId: string, reason: string, requestId: string | undefined, now: number, counted: boolean): void {
		const counts = this.#counts(orgId, now);
		if (counted) counts.refused[reason] = (counts.refused[reason] ?? 0) + 1;
		if (requestId !== undefined && now >= (counts.lastRefusal?.at ?? 0)) counts.lastRefusal = { requestId, reason, at: now };
	}

	/** Actual usage of a settled request. */
	used(orgId: string, usage: Usage & UsageDetail, now: number): void {
		const counts = this.#counts(orgId, now);
		counts.inputTokens += whole(usage.inputTokens);
		counts.outputTokens += whole(usage.outputTokens);
		counts.cacheReadTokens += whole(usage.cacheReadTokens);
		counts.cacheWriteTokens += whole(usage.cacheWriteTokens);
		counts.spendNanos += whole(usage.costNanos);
	}

	/** Takes everything counted for `orgId` (to send it), or `undefined` when there is nothing. */
	take(orgId: string): HistoryEntry[] | undefined {
		const minutes = this.#orgs.get(orgId);
		if (minutes === undefined) return undefined;
		this.#orgs.delete(orgId);
		return [...minutes].map(([minute, counts]) => ({ minute, ...counts }));
	}

	/** Puts back what a failed call took, so it goes with the next one. */
	restore(orgId: string, entries: readonly HistoryEntry[] | undefined): void {
		for (const entry of entries ?? []) {
			const counts = this.#counts(orgId, entry.minute);
			counts.admitted += entry.admitted ?? 0;
			for (const [reason, n] of Object.entries(entry.refused ?? {})) counts.refused[reason] = (counts.refused[reason] ?? 0) + n;
			counts.inputTokens += entry.inputTokens ?? 0;
			counts.cacheReadTokens += entry.cacheReadTokens ?? 0;
			counts.cacheWriteTokens += entry.cacheWriteTokens ?? 0;
			counts.outputTokens += entry.outputTokens ?? 0;
			counts.spendNanos += entry.spendNanos ?? 0;
			if (entry.lastRefusal !== undefined && entry.lastRefusal.at >= (counts.lastRefusal?.at ?? 0)) counts.lastRefusal = { ...entry.lastRefusal };
		}
	}

	#counts(orgId: string, now: number): Counts {
		let minutes = this.#orgs.get(orgId);
		if (minutes === undefined) {
			minutes = new Map();
			this.#orgs.set(orgId, minutes);
		}
		let minute = minuteOf(now);
		if (!minutes.has(minute) && minutes.size >= MAX_TALLY_MINUTES) minute = Math.min(...minutes.keys());
		let counts = minutes.get(minute);
		if (counts === undefined) {
			counts = { admitted: 0, refused: {}, inputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, outputTokens: 0, spendNanos: 0 };
			minutes.set(minute, counts);
		}
		return counts;
	}
}

/** The isolate's tally, shared by its limiter clients and read (and sent) by the admin API. */
export const usageTally = new UsageTally();

/** The reason a console shows for a rejection: the limit (`budget` for money), with the model family if any. */
export function refusalReason(decision: Decision): string {
	if (decision.admitted) return "admitted";
	const limit = decision.limit === "spend" ? "budget" : decision.limit;
	return decision.family === undefined ? limit : `${limit}:${decision.family}`;
}

/** The calls a stub makes, with the console's fields added and read. */
export interface ConsoleStub {
	admit(request: object): Promise<unknown>;
	grow(request: object): Promise<unknown>;
	settle(request: object): Promise<unknown>;
	settleClaim(request: object): Promise<unknown>;
	holdForBatch(request: object): Promise<unknown>;
	lease(request: object): Promise<unknown>;
}

/**
 * A limiter client's link to the console: refuses keys the isolate knows are revoked (`401`),
 * counts what the object cannot see, and adds the console's fields to every object call.
 * `exact` mode: the object counts its own admissions and refusals; `lease` mode: the isolate
 * counts every decision, since most never reach the object.
 */
export class ConsoleLink {
	constructor(
		private readonly now: () => number,
		private readonly mode: "exact" | "lease",
		private readonly tally: UsageTally = usageTally,
		private readonly book: RevocationBook = revocationBook,
	) {}

	/** Decides an admission with `decide`, unless the key is revoked; counts the outcome. */
	async admit(request: { readonly orgId: string } & AdmitContext, decide: () => Promise<Decision>): Promise<Decision> {
		const { orgId, keyId, requestId } = request;
		if (this.book.isRevoked(orgId, keyId, this.now())) throw this.#revoked(orgId, keyId, requestId, true);
		const decision = await decide();
		const now = this.now();
		const objectCounted = this.mode === "exact" && decision.source === "object";
		if (this.book.isRevoked(orgId, keyId, now)) throw this.#revoked(orgId, keyId, requestId, !objectCounted || decision.admitted);
		if (decision.admitted) {
			if (decision.source === "lease") this.tally.admitted(orgId, now);
		} else {
			this.tally.refused(orgId, refusalReason(decision), requestId, now, !objectCounted);
		}
		return decision;
	}

	/** Counts a settled request's actual usage (sent with the organisation's next call). */
	settled(orgId: string, usage: Usage & UsageDetail): void {
		this.tally.used(orgId, usage, this.now());
	}

	/** `stub`, with the console's fields added to each call and read from each answer. */
	wrap<S extends ConsoleStub>(orgId: string, stub: S): S {
		const exchange = async (send: (uplink: { console: ConsoleUplink }) => Promise<unknown>): Promise<unknown> => {
			const tally = this.tally.take(orgId);
			const uplink: ConsoleUplink = { ...(tally === undefined ? {} : { tally }), revocationsSeen: this.book.seen(orgId) };
			let answer: unknown;
			try {
				answer = await send({ console: uplink });
			} catch (error) {
				this.tally.restore(orgId, tally);
				throw error;
			}
			const downlink = (answer as { console?: ConsoleDownlink } | undefined)?.console;
			this.book.learn(orgId, downlink?.revocations, this.now());
			return answer;
		};
		return {
			admit: (request: object) => exchange((extra) => stub.admit({ ...request, ...extra })),
			grow: (request: object) => exchange((extra) => stub.grow({ ...request, ...extra })),
			settle: (request: object) => exchange((extra) => stub.settle({ ...request, ...extra })),
			settleClaim: (request: object) => exchange((extra) => stub.settleClaim({ ...request, ...extra })),
			holdForBatch: (request: object) => exchange((extra) => stub.holdForBatch({ ...request, ...extra })),
			lease: (request: object) => exchange((extra) => stub.lease({ ...request, ...extra })),
		} as S;
	}

	#revoked(orgId: string, keyId: string | undefined, requestId: string | undefined, count: boolean): GuardError {
		this.tally.refused(orgId, "revoked_key", requestId, this.now(), count);
		return new GuardError(401, "invalid x-api-key", {
			type: "authentication_error",
			detail: { auth: { outcome: "revoked-key", org_id: orgId, key_id: keyId ?? null } },
		});
	}
}

function whole(value: number | undefined): number {
	return typeof value === "number" && Number.isFinite(value) && value > 0 ? Math.round(value) : 0;
}
