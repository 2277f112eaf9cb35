import type { GuardConfig } from "../config/guard-config";
import type { Route } from "../config/route-table";
import type { Env } from "../env";
import { checkDeclaredLength, limitBody } from "../body-limit/body-limit";
import { GuardError } from "../errors/guard-error";
import { authenticate } from "../keys/authenticate";
import { checkRequestHeaders } from "../keys/request-checks";
import { usageTap } from "../lib/usage-tap";
import { enforceLimits } from "../limits/enforce-limits";
import type { GuardRequest } from "../pipeline/request-state";
import { clientResponseHeaders, originRequestHeaders } from "./headers";
import { originTarget } from "./origin";
import { normaliseOriginError } from "./origin-error";
import { rewriteResponseUrls } from "./rewrite-urls";

/**
 * The route handler that forwards a request to its origin and streams the answer back: method,
 * path, query and end-to-end headers pass through, bodies stream both ways unbuffered, origin
 * errors become the envelope, and configured URL fields point back at the guard.
 */
export function proxyRoute(route: Route, config: GuardConfig) {
	return async function forwardToOrigin(request: GuardRequest, env: Env, ctx: ExecutionContext): Promise<Response> {
		const state = request.guard;
		state.route = route.name;
		const incoming = new URL(request.url);
		const target = originTarget(route, config, env, incoming);
		state.origin = target.name;

		const identity = route.auth ? await authenticate(request, route, config, keyStoreOf(env), state) : undefined;
		checkRequestHeaders(request, route, state);
		checkDeclaredLength(request, route, state);
		// Last before forwarding, so no later check rejects a request the limiter charged.
		const limits = identity ? await enforceLimits(request, route, config, env.USAGE, identity, state) : undefined;
		if (limits) Object.assign(state.responseHeaders, limits.headers);
		const names = config.identityHeaders;
		const limited = limitBody(request, route, state);
		const fetching = target.fetch(target.url, {
			method: request.method,
			headers: originRequestHeaders(request.headers, state.requestId, {
				forwardApiKey: route.forwardApiKey,
				set: {
					[names.org]: identity?.orgId ?? null,
					[names.key]: identity?.keyId ?? null,
					[names.workspace]: identity?.workspaceId ?? null,
				},
			}),
			body: limited.body,
			redirect: "manual",
			signal: limited.signal,
		});
		let upstream: Response;
		try {
			const first = await Promise.race([fetching, limited.failed]);
			if (first instanceof GuardError) throw first;
			upstream = first;
		} catch (cause) {
			const failure = limited.failure() ?? (cause instanceof GuardError ? cause : undefined);
			if (failure) {
				fetching.catch(() => undefined);
				// Refused after admission (mid-stream): the limiter gives the request back.
				if (limits?.settle) ctx.waitUntil(limits.settle({}, false));
				throw failure;
			}
			throw new GuardError(500, "The upstream service could not be reached. Please retry later.", {
				type: "api_error",
				cause,
				detail: { origin_failure: String(cause) },
			});
		}

		if (upstream.status >= 400) {
			const { response, type } = await normaliseOriginError(upstream, state.requestId);
			state.errorType = type;
			return response;
		}
		const settle = route.meterTokens ? limits?.settle : undefined;
		const tapKind = usageKind(upstream.headers.get("content-type"));
		const body =
			settle && tapKind && upstream.body
				? upstream.body.pipeThrough(usageTap(tapKind, (usage) => ctx.waitUntil(settle(usage))))
				: upstream.body;
		const response = new Response(body, {
			status: upstream.status,
			statusText: upstream.statusText,
			headers: clientResponseHeaders(upstream.headers, state.requestId),
		});
		const originBase = target.name.startsWith("http") ? target.name : undefined;
		return rewriteResponseUrls(response, route.rewriteUrls, incoming.origin, originBase);
	};
}

function keyStoreOf(env: Env): KVNamespace {
	// Validation refuses a table with auth routes and no KEYS; this only guards a changed binding.
	if (!env.KEYS) throw new GuardError(500, "The guard's key store (KEYS) is not bound.", { type: "api_error" });
	return env.KEYS;
}

function usageKind(contentType: string | null): "json" | "sse" | undefined {
	if (contentType?.includes("text/event-stream")) return "sse";
	if (contentType?.includes("json")) return "json";
	return undefined;
}
