import { type BodyPlan, type LimitedBody, openBody } from "../body-limit/body-limit";
import { GuardError } from "../errors/guard-error";
import type { Identity } from "../keys/authenticate";
import type { BodyInspector } from "../lib/counting-pump";
import { TIMED_OUT, within } from "../lib/within";
import type { LimitOutcome } from "../limits/client/enforce-limits";
import { longRequestRule } from "../long-requests/long-request-rule";
import type { Admitted } from "../overload/admission";
import { isOriginFailure } from "../overload/circuit-breaker";
import { originRequestHeaders } from "../proxy/headers";
import type { Exchange } from "./exchange";

/** The origin's answer, and what the answer stage needs to go on. */
export interface Reached {
	readonly upstream: Response;
	/** Cancels the origin's request (its body stalled, or the client left). */
	readonly abortUpstream: () => void;
	readonly body: LimitedBody;
}

/**
 * Stage 6: sends the request to the origin and waits for its response headers, within the route's
 * `response_timeout_seconds`. The body travels along its plan; the moment it breaks a bound (cap,
 * length, budget, idle, the 10-minute rule) the upload is aborted and that refusal is the answer.
 *
 * The origin's breaker hears only what the origin did: its status, a connection error, or its
 * silence once it had the whole request. A refused body, a slow or broken upload and a client
 * that left count neither way. A request refused after admission keeps its request unit and is
 * charged the input of the bytes read; only one the origin never received is given back.
 */
export async function forward(exchange: Exchange, slot: Admitted, identity: Identity | undefined, plan: BodyPlan, limits: LimitOutcome | undefined): Promise<Reached> {
	const { request, route, config, env, state, target, incoming } = exchange;
	const inspector = route.refuseLongNonStreaming ? longRequestCheck(state) : undefined;
	// An empty body is one the rule cannot read either.
	const emptyRefusal = plan.kind === "none" ? inspector?.end() : undefined;
	const claim = limits?.claim;
	if (emptyRefusal !== undefined) {
		claim?.settle({ kind: "refused", bytesRead: 0 });
		slot.reached("cancelled");
		throw new GuardError(400, emptyRefusal);
	}
	const growth = claim?.growth;
	// A claim that grows must see every byte: a body it would have let travel untouched is counted.
	const bodyPlan: BodyPlan = growth !== undefined && plan.kind === "untouched" ? { ...plan, kind: "counted" } : plan;
	const minRate = { bytesPerSecond: route.minBodyRate, graceMs: route.bodyRateGraceMs };
	const body = openBody(request, bodyPlan, state, { idleMs: route.bodyIdleTimeoutMs, inspector, claim: growth, minRate, responseTimeoutMs: route.responseTimeoutMs });
	state.bytesIn = body.bytes;
	const settle = (counted: boolean) => claim?.settle(counted ? { kind: "refused", bytesRead: body.bytes() } : { kind: "not-received" });
	// Refused by the guard after admission: not the origin's doing, and charged what was read.
	const refusedAfterAdmission = (error: GuardError): GuardError => {
		fetching.catch(() => undefined);
		slot.reached("cancelled");
		settle(true);
		return error;
	};
	// One controller for the upload: the guard's bounds, the body's refusal and the client leaving.
	const upstreamAbort = new AbortController();
	const abort = () => upstreamAbort.abort();
	request.signal?.addEventListener("abort", abort, { once: true });
	body.signal?.addEventListener("abort", abort, { once: true });
	const signal = upstreamAbort.signal;
	const names = config.identityHeaders;
	const headers = originRequestHeaders(
		request.headers,
		state.requestId,
		{
			forwardApiKey: route.forwardApiKey,
			set: {
				[names.org]: identity?.orgId ?? null,
				[names.key]: identity?.keyId ?? null,
				[names.workspace]: identity?.workspaceId ?? null,
				// A client's copy is always dropped; only the guard may vouch for its traffic.
				[config.originTokenHeader]: env.ORIGIN_TOKEN || null,
			},
		},
		// A decoded body no longer has the coding or the length it was sent with.
		plan.decode === undefined ? undefined : DECODED_BODY_DROPS,
	);
	const fetching = target.fetch(target.url(incoming), {
		// HEAD is answered as GET without a body (RFC 9110 §9.3.2), whatever the origin does with HEAD.
		method: request.method === "HEAD" ? "GET" : request.method,
		headers,
		body: body.body,
		redirect: "manual",
		signal,
	});
	let first: Response | GuardError | typeof TIMED_OUT;
	try {
		first = await within(body.failed === undefined ? fetching : Promise.race([fetching, body.failed]), route.responseTimeoutMs);
	} catch (cause) {
		const refused = body.failure() ?? (cause instanceof GuardError ? cause : undefined);
		if (refused) throw refusedAfterAdmission(refused);
		fetching.catch(() => undefined);
		// A client that left is not the origin's failure; nobody reads this answer, the log line does.
		if (request.signal?.aborted === true) {
			slot.reached("cancelled");
			settle(true);
			throw new GuardError(499, "The client closed the connection before the upstream service answered.", {
				type: "api_error",
				detail: { client: "disconnected before the origin answered" },
			});
		}
		slot.reached("failure");
		settle(false);
		throw new GuardError(500, "The upstream service could not be reached. Please retry later.", {
			type: "api_error",
			cause,
			detail: { origin_failure: String(cause) },
		});
	}
	if (first instanceof GuardError) throw refusedAfterAdmission(first);
	if (first === TIMED_OUT) {
		fetching.catch(() => undefined);
		upstreamAbort.abort();
		settle(true);
		throw timedOut(exchange, slot, body.complete());
	}
	state.originMs = Date.now() - state.startedAt;
	// An origin that answered before taking the whole body: a bound the rest of the upload breaks later must not cut its answer.
	body.signal?.removeEventListener("abort", abort);
	body.originAnswered();
	// A 5xx to a client that already left (its upload broke off) may be the broken upload's doing.
	const clientGone = request.signal?.aborted === true;
	slot.reached(clientGone ? "cancelled" : isOriginFailure(first.status) ? "failure" : "success");
	return { upstream: first, abortUpstream: () => upstreamAbort.abort(), body };
}

const DECODED_BODY_DROPS: readonly string[] = ["content-encoding", "content-length"];

/**
 * No response headers within the bound. The origin is blamed (`504`, a breaker failure) only when
 * it had the whole request; an upload still under way is the client's pace (`408`); a body the
 * runtime sent untouched with no minimum rate to watch it could be either, so the answer is `504`
 * but the breaker does not count it.
 */
function timedOut(exchange: Exchange, slot: Admitted, bodyComplete: boolean | undefined): GuardError {
	const { route, state } = exchange;
	const seconds = route.responseTimeoutMs / 1000;
	if (bodyComplete === false) {
		slot.reached("cancelled");
		state.decisions.origin_timeout = { bound: "response_headers", seconds, blame: "client-upload" };
		return new GuardError(408, `The request body did not arrive within ${seconds} seconds; the request was cancelled.`);
	}
	slot.reached(bodyComplete === true ? "failure" : "cancelled");
	state.decisions.origin_timeout = { bound: "response_headers", seconds, blame: bodyComplete === true ? "origin" : "unknown" };
	return new GuardError(504, `The upstream service did not answer within ${seconds} seconds.`, { type: "timeout_error" });
}

function longRequestCheck(state: Exchange["state"]): BodyInspector {
	return longRequestRule((verdict) => {
		state.decisions.long_request = verdict;
	});
}
