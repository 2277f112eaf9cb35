import { type RevocationBook, type RevocationList, revocationBook } from "../../keys/revocations";
import { RevokedKeyError } from "../../keys/revoked";
import type { Decision, Usage } from "../decisions";
import type { HistoryEntry } from "./usage-history";
import { type UsageDetail, type UsageTally, usageTally } from "./usage-tally";

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
 * A limiter client's link to the console: stops keys the isolate knows are revoked (with a
 * {@link RevokedKeyError}: `keys/` answers it), counts what the object cannot see, and adds the
 * console's fields to every object call.
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

	/** Decides an admission with `decide`, unless the key is revoked (thrown: {@link RevokedKeyError}); counts the outcome. */
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

	/** A revoked key's refusal, counted (`revoked_key`) unless the object counted it. */
	#revoked(orgId: string, keyId: string | undefined, requestId: string | undefined, count: boolean): RevokedKeyError {
		this.tally.refused(orgId, "revoked_key", requestId, this.now(), count);
		return new RevokedKeyError(orgId, keyId);
	}
}
