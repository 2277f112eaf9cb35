import type { RetryPolicy } from "../config/origin-list";
import { TIMED_OUT, within } from "../lib/within";
import type { PoolAdmitted } from "../overload/admission";
import { ATTEMPT_HEADER } from "../proxy/headers";
import type { OriginTarget } from "../proxy/origin";
import { replayBody } from "./replay-body";

/** Statuses that say the origin did not do the work: always worth another origin. */
const RETRYABLE = new Set([503, 529]);

/** One attempt as the request's log line lists it. */
export interface AttemptRecord {
	readonly origin: string;
	/**
	 * `answered`: its answer is the client's; `retryable-status`: `503`, `529` or a status the route
	 * lists; `unreachable`: no connection or a broken one; `no-headers`: nothing within
	 * `connect_timeout_seconds`; `breaker-open`: skipped, its breaker refused (not an attempt).
	 */
	readonly outcome: "answered" | "retryable-status" | "unreachable" | "no-headers" | "breaker-open";
	readonly status?: number;
	readonly ms: number;
	/** Why a retryable failure was the client's answer after all. */
	readonly not_retried?: "body-length-unknown" | "body-over-replay-max" | "attempts-exhausted" | "no-origin-left";
}

/** What the attempts need: the origins in order, the policy, and the request's admission. */
export interface AttemptPlan {
	readonly candidates: readonly OriginTarget[];
	readonly retry: RetryPolicy;
	readonly slot: PoolAdmitted;
	/** Whether `origin`'s breaker would let an attempt through now (a look that takes nothing). */
	readonly admits: (origin: string) => boolean;
	/** Receives each attempt as it ends (the log line's `attempts`). */
	readonly record: (attempt: AttemptRecord) => void;
	/** Called with the origin whose answer (or failure) is the client's. */
	readonly answering: (target: OriginTarget) => void;
	readonly now?: () => number;
}

/**
 * Sends one request to a route's origins in order until one answers, retrying only before the
 * first byte of an answer and only where it is safe: the origin could not be reached, answered
 * `503`/`529` (or a status the route lists), or sent no headers within `connect_timeout_seconds`;
 * at most `max_attempts` sends; only a body kept for replay is sent twice. A failed attempt is its
 * origin's breaker failure; the answering attempt is reported by the caller, through the slot,
 * as a single-origin request is. The caller's signal (its response timeout, the client leaving)
 * aborts whichever attempt is under way, and no attempt starts after it.
 */
export async function sendWithRetries(plan: AttemptPlan, incoming: URL, init: RequestInit): Promise<Response> {
	const { candidates, retry, slot, record } = plan;
	const now = plan.now ?? Date.now;
	const headers = new Headers(init.headers);
	const body = await replayBody(init.body, headers, retry.replayMaxBytes);
	const outer = init.signal ?? undefined;
	let attempts = 0;
	for (let index = 0; index < candidates.length; index++) {
		const target = candidates[index] as OriginTarget;
		if (outer?.aborted) throw outer.reason;
		const pass = slot.tryOrigin(target.name);
		if (!pass.ok) {
			record({ origin: target.name, outcome: "breaker-open", ms: 0 });
			continue;
		}
		attempts++;
		const notRetried = !body.replayable
			? body.reason
			: attempts >= retry.maxAttempts
				? "attempts-exhausted"
				: candidates.slice(index + 1).some((next) => plan.admits(next.name))
					? undefined
					: "no-origin-left";
		const controller = new AbortController();
		const abort = () => controller.abort(outer?.reason);
		outer?.addEventListener("abort", abort, { once: true });
		headers.set(ATTEMPT_HEADER, String(attempts));
		const started = now();
		const fetching = target.fetch(target.url(incoming), {
			...init,
			headers,
			body: body.replayable ? body.bytes : body.stream,
			signal: controller.signal,
		});
		let result: Response | typeof TIMED_OUT | { error: unknown };
		try {
			// Only an attempt with a next one waits for the connect bound; the last waits the route's whole response timeout.
			result = notRetried === undefined && retry.connectTimeoutMs > 0 ? await within(fetching, retry.connectTimeoutMs) : await fetching;
		} catch (error) {
			result = { error };
		}
		const ms = now() - started;
		if (result instanceof Response && !RETRYABLE.has(result.status) && !retry.retryStatuses.includes(result.status)) {
			record({ origin: target.name, outcome: "answered", status: result.status, ms });
			plan.answering(target);
			return result;
		}
		// A client that left (or the response timeout) is not this origin's failure: the caller reports it.
		if (!(result instanceof Response) && outer?.aborted) throw outer.reason;
		const outcome = result instanceof Response ? "retryable-status" : result === TIMED_OUT ? "no-headers" : "unreachable";
		const status = result instanceof Response ? result.status : undefined;
		if (notRetried !== undefined) {
			record({ origin: target.name, outcome, ...(status === undefined ? {} : { status }), ms, not_retried: notRetried });
			plan.answering(target);
			if (result instanceof Response) return result;
			throw (result as { error: unknown }).error;
		}
		record({ origin: target.name, outcome, ...(status === undefined ? {} : { status }), ms });
		slot.reached("failure");
		outer?.removeEventListener("abort", abort);
		if (result === TIMED_OUT) {
			controller.abort();
			fetching.then((late) => late.body?.cancel()).catch(() => undefined);
		} else if (result instanceof Response) {
			await result.body?.cancel().catch(() => undefined);
		}
	}
	// Every origin left was refused by its breaker before anything was sent.
	throw new Error("no origin of the route could be tried: every breaker refused");
}
