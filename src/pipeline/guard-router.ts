import { Router, type RouterType } from "itty-router";
import { registerAdmin } from "../admin/admin-routes";
import { lingerOnUnreadBody } from "../body-limit/linger";
import type { ConfigError } from "../config/config-error";
import { applyCors, browserRefusal, preflight } from "../cors/cors";
import type { CorsConfig } from "../cors/cors-config";
import type { GuardConfig } from "../config/guard-config";
import type { Env } from "../env";
import { errorResponse } from "../errors/error-response";
import { GuardError } from "../errors/guard-error";
import { logRequest, requestLogLine } from "../log/request-log";
import { Overload } from "../overload/admission";
import { type GuardRequest, withRequestState } from "./request-state";
import { routeHandler } from "./route-handler";

/** The guard's pipeline for one configuration. */
export type GuardRouter = RouterType<GuardRequest, [Env, ExecutionContext], Response>;

/**
 * Builds the whole pipeline for a validated configuration: request ID, the configured routes (each
 * the stages of `route-handler.ts`; HEAD wherever GET is routed), a 405 with `allow` for a known
 * path with another method, a 404 for any other path; every error becomes the envelope; every
 * response gets `request-id` and one log line.
 */
export function buildGuardRouter(config: GuardConfig): GuardRouter {
	const router = pipeline(config.cors);
	// Per isolate and configuration: in-flight counts and breakers start afresh when it changes.
	const overload = new Overload(config.overload);
	// The operator console (`/_guard/`, src/admin/) first: its own page's requests carry `Origin`,
	// and it is never shed, charged or forwarded; off (404) without ADMIN_TOKEN.
	registerAdmin(router, config, overload);
	// Browsers first, before shedding, keys or limits: a browser request without the opt-in header
	// (or from an origin not allowed) is refused; a preflight is answered (never forwarded or charged).
	router.all("*", function refuseBrowsers(request: GuardRequest) {
		const refusal = browserRefusal(request, config.cors);
		if (refusal) throw new GuardError(401, refusal.message, { type: "authentication_error", headers: refusal.headers });
	});
	const allowByPath = new Map<string, Set<string>>();
	for (const route of config.routes) {
		const allow = allowByPath.get(route.path) ?? new Set<string>();
		for (const method of withHead(route.methods)) allow.add(method);
		allowByPath.set(route.path, allow);
	}
	for (const [path, allow] of allowByPath) router.options(path, (request: GuardRequest) => preflight(request, config.cors, [...allow]));
	router.options("*", (request: GuardRequest) => preflight(request, config.cors, []));
	for (const route of config.routes) {
		const handle = routeHandler(route, config, overload);
		for (const method of withHead(route.methods)) router[method.toLowerCase()]?.(route.path, handle);
	}
	for (const [path, allow] of allowByPath) router.all(path, methodNotAllowed([...allow]));
	router.all("*", notFound);
	return router;
}

/** The pipeline while the configuration is invalid: every request answers `500 api_error`. */
export function buildBrokenRouter(problem: ConfigError): GuardRouter {
	const router = pipeline();
	router.all("*", function configurationInvalid(request: GuardRequest) {
		request.guard.decisions.config = { valid: false, field: problem.field };
		// The field-by-field reason is for the operator (the log, `npm run check-config`): a
		// configuration value can hold what no client may see.
		throw new GuardError(500, "The service is misconfigured; its operator has been told. Please retry later.", { type: "api_error" });
	});
	return router;
}

function pipeline(cors?: CorsConfig): GuardRouter {
	// An answer the answer stage stamped already carries the guard's CORS headers.
	const withCors = (response: Response, request: GuardRequest) =>
		cors === undefined || response === request.guard?.stamped ? response : applyCors(response, request, cors);
	return Router<GuardRequest, [Env, ExecutionContext], Response>({
		before: [withRequestState],
		catch: renderError,
		finally: [withCors, stampAndLog],
	});
}

/** RFC 9110 §9.3.2: HEAD is supported wherever GET is. */
function withHead(methods: readonly string[]): string[] {
	return methods.includes("GET") && !methods.includes("HEAD") ? [...methods, "HEAD"] : [...methods];
}

function methodNotAllowed(allow: string[]) {
	return function rejectMethod(request: GuardRequest): never {
		throw new GuardError(405, `${request.method} is not allowed on ${new URL(request.url).pathname}; allowed: ${allow.join(", ")}.`, {
			headers: { allow: allow.join(", ") },
		});
	};
}

function notFound(): never {
	throw new GuardError(404, "The requested resource could not be found.");
}

function renderError(error: unknown, request: GuardRequest): Response {
	const requestId = request.guard?.requestId ?? "";
	const known =
		error instanceof GuardError
			? error
			: new GuardError(500, "An unexpected error occurred inside the guard.", { type: "api_error", cause: error });
	if (!(error instanceof GuardError)) {
		console.error({ request_id: requestId, message: "unexpected error", error: String(error), stack: (error as Error)?.stack });
	}
	if (known.detail) Object.assign(request.guard.decisions, known.detail);
	request.guard.errorType = known.type;
	return errorResponse({
		status: known.status,
		type: known.type,
		message: known.message,
		requestId,
		headers: known.headers,
		holdOpenUntil: known.holdOpenUntil ?? lingerOnUnreadBody(request, request.guard),
	});
}

/**
 * Sets headers on the response the pipeline built (its headers are mutable, so no copy is made),
 * or on a copy when they are not (a response handed on from a fetch).
 */
function withHeaders(response: Response, headers: readonly [string, string][]): Response {
	try {
		for (const [name, value] of headers) response.headers.set(name, value);
		return response;
	} catch {
		const copy = new Response(response.body, response);
		for (const [name, value] of headers) copy.headers.set(name, value);
		return copy;
	}
}

function stampAndLog(response: Response, request: GuardRequest, env: Env, ctx: ExecutionContext): Response {
	const state = request.guard;
	// The guard's own (its limits, the organisation it identified) win over an origin's copies.
	const final =
		response === state.stamped ? response : withHeaders(response, [["request-id", state.requestId], ...Object.entries(state.responseHeaders)]);
	const analytics = env?.ANALYTICS;
	const write = (bytesOut: number | undefined) => logRequest(requestLogLine(state, request, final, bytesOut), analytics);
	// A proxied body is logged when it ends, so the line has its bytes and the whole time taken.
	if (state.bodyEnded) ctx.waitUntil(state.bodyEnded.then(write));
	else write(state.answered?.bytesOut);
	return final;
}
