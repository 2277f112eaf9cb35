import { type GuardConfig, inFlightGroup } from "../config/guard-config";
import type { Route } from "../config/route-table";
import type { Env } from "../env";
import { checkDeclaredLength, limitBody } from "../body-limit/body-limit";
import { GuardError } from "../errors/guard-error";
import { authenticate } from "../keys/authenticate";
import { checkRequestHeaders } from "../keys/request-checks";
import type { BodyInspector } from "../lib/counting-pump";
import { usageTap } from "../lib/usage-tap";
import { longRequestRule } from "../long-requests/long-request-rule";
import { onBodyEnd } from "../lib/body-end";
import { declaredLength } from "../lib/content-length";
import { enforceLimits } from "../limits/enforce-limits";
import { type Admitted, admitToOrigin, type Overload } from "../overload/admission";
import { isOriginFailure } from "../overload/circuit-breaker";
import type { GuardRequest } from "../pipeline/request-state";
import { deadline } from "./deadline";
import { honestEventStream } from "./honest-stream";
import { clientResponseHeaders, originRequestHeaders } from "./headers";
import { type OriginTarget, originTarget } from "./origin";
import { normaliseOriginError } from "./origin-error";
import { rewriteResponseUrls } from "./rewrite-urls";

/**
 * The route handler that forwards a request to its origin and streams the answer back: method,
 * path, query and end-to-end headers pass through, bodies stream both ways unbuffered, origin
 * errors become the envelope, and configured URL fields point back at the guard.
 */
export function proxyRoute(route: Route, config: GuardConfig, overload: Overload) {
	const group = inFlightGroup(route);
	return async function forwardToOrigin(request: GuardRequest, env: Env, ctx: ExecutionContext): Promise<Response> {
		const state = request.guard;
		state.route = route.name;
		const incoming = new URL(request.url);
		const target = originTarget(route, config, env, incoming);
		state.origin = target.name;
		// First, before any key lookup or body byte: shedding must cost next to nothing.
		const admitted = admitToOrigin(overload, group, target.name, state);
		let ended: (bytesOut: number | undefined) => void = () => undefined;
		const bodyEnded = new Promise<number | undefined>((resolve) => {
			ended = (bytesOut) => {
				admitted.release();
				resolve(bytesOut);
			};
		});
		// The client gone frees the slot at once, even if workerd then stops running this request.
		request.signal?.addEventListener("abort", () => ended(undefined), { once: true });
		try {
			const { response, eventStream } = await forward(request, env, ctx, target, incoming, admitted, ended);
			state.bodyEnded = bodyEnded;
			if (eventStream) return response;
			const length = declaredLength(response.headers);
			const known = typeof length === "number" ? length : undefined;
			const body = onBodyEnd(response.body, known, ended);
			return body === response.body ? response : new Response(body, response);
		} catch (error) {
			admitted.release();
			throw error;
		}
	};

	async function forward(
		request: GuardRequest,
		env: Env,
		ctx: ExecutionContext,
		target: OriginTarget,
		incoming: URL,
		admitted: Admitted,
		ended: (bytesOut: number | undefined) => void,
	): Promise<{ response: Response; eventStream: boolean }> {
		const state = request.guard;
		const identity = route.auth ? await authenticate(request, route, config, keyStoreOf(env), state) : undefined;
		if (identity) admitted.claimOrg(identity.orgId);
		checkRequestHeaders(request, route, state);
		checkDeclaredLength(request, route, state);
		// Last before forwarding, so no later check rejects a request the limiter charged.
		const limits = identity ? await enforceLimits(request, route, config, env.USAGE, identity, state) : undefined;
		if (limits) Object.assign(state.responseHeaders, limits.headers);
		const names = config.identityHeaders;
		const limited = limitBody(request, route, state, longRequestCheck(route, state));
		state.bytesIn = limited.bytes;
		// One abort for the upload: a body over a bound, the response-time bound, or the client gone.
		const upstreamAbort = new AbortController();
		const signal = AbortSignal.any([limited.signal, upstreamAbort.signal, ...clientSignal(request)]);
		const fetching = target.fetch(target.url, {
			method: request.method,
			headers: originRequestHeaders(request.headers, state.requestId, {
				forwardApiKey: route.forwardApiKey,
				set: {
					[names.org]: identity?.orgId ?? null,
					[names.key]: identity?.keyId ?? null,
					[names.workspace]: identity?.workspaceId ?? null,
					// A client's copy is always dropped; only the guard may vouch for its traffic.
					[config.originTokenHeader]: env.ORIGIN_TOKEN || null,
				},
			}),
			body: limited.body,
			redirect: "manual",
			signal,
		});
		const timer = deadline(route.responseTimeoutMs);
		let upstream: Response;
		try {
			const first = await Promise.race([fetching, limited.failed, timer.expired]);
			if (first instanceof GuardError) throw first;
			if (first === "expired") {
				upstreamAbort.abort();
				admitted.reached("failure");
				throw responseTimeout(route, state);
			}
			upstream = first;
		} catch (cause) {
			fetching.catch(() => undefined);
			const failure = limited.failure() ?? (cause instanceof GuardError ? cause : undefined);
			if (failure) {
				// Refused after admission (mid-stream): the limiter gives the request back.
				if (limits?.settle) ctx.waitUntil(limits.settle({}, false));
				throw failure;
			}
			// A client that left is not the origin's failure; nobody reads this answer, the log line does.
			const clientGone = request.signal?.aborted === true;
			admitted.reached(clientGone ? "cancelled" : "failure");
			throw new GuardError(500, "The upstream service could not be reached. Please retry later.", {
				type: "api_error",
				cause,
				detail: clientGone ? { client: "disconnected before the origin answered" } : { origin_failure: String(cause) },
			});
		} finally {
			timer.clear();
		}
		state.originMs = Date.now() - state.startedAt;
		admitted.reached(isOriginFailure(upstream.status) ? "failure" : "success");

		if (upstream.status >= 400) {
			const { response, type } = await normaliseOriginError(upstream, state.requestId);
			state.errorType = type;
			return { response, eventStream: false };
		}
		const settle = route.meterTokens ? limits?.settle : undefined;
		const tapKind = usageKind(upstream.headers.get("content-type"));
		const tapped =
			settle && tapKind && upstream.body
				? upstream.body.pipeThrough(usageTap(tapKind, (usage) => ctx.waitUntil(settle(usage))))
				: upstream.body;
		// An event stream ends through the guard's own stream, which frees the slot the moment the
		// client cancels; any other body is watched natively (onBodyEnd) so it keeps full speed.
		const eventStream = tapped !== null && isEventStream(upstream.headers);
		const body = eventStream
			? honestEventStream(tapped, route, state, {
					abortUpstream: () => upstreamAbort.abort(),
					overloaded: () => overload.breakerFor(target.name).state !== "closed",
					ended,
				})
			: tapped;
		const response = new Response(body, {
			status: upstream.status,
			statusText: upstream.statusText,
			headers: clientResponseHeaders(upstream.headers, state.requestId),
		});
		const originBase = target.name.startsWith("http") ? target.name : undefined;
		return { response: await rewriteResponseUrls(response, route.rewriteUrls, incoming.origin, originBase), eventStream };
	}
}

function keyStoreOf(env: Env): KVNamespace {
	// Validation refuses a table with auth routes and no KEYS; this only guards a changed binding.
	if (!env.KEYS) throw new GuardError(500, "The guard's key store (KEYS) is not bound.", { type: "api_error" });
	return env.KEYS;
}

function responseTimeout(route: Route, state: GuardRequest["guard"]): GuardError {
	const seconds = route.responseTimeoutMs / 1000;
	state.decisions.origin_timeout = { bound: "response_headers", seconds };
	return new GuardError(504, `The upstream service did not answer within ${seconds} seconds.`, { type: "timeout_error" });
}

/** The client's own signal, which workerd aborts when the client disconnects. */
function clientSignal(request: Request): AbortSignal[] {
	return request.signal ? [request.signal] : [];
}

function longRequestCheck(route: Route, state: GuardRequest["guard"]): BodyInspector | undefined {
	if (!route.refuseLongNonStreaming) return undefined;
	return longRequestRule((verdict) => {
		state.decisions.long_request = verdict;
	});
}

function isEventStream(headers: Headers): boolean {
	return headers.get("content-type")?.includes("text/event-stream") ?? false;
}

function usageKind(contentType: string | null): "json" | "sse" | undefined {
	if (contentType?.includes("text/event-stream")) return "sse";
	if (contentType?.includes("json")) return "json";
	return undefined;
}
