import type { Route } from "../config/route-table";
import { GuardError } from "../errors/guard-error";
import { hasBody } from "../lib/content-length";
import type { RequestState } from "../lib/request-state";

/**
 * The request checks that come after the key, in the SPEC's order: a route that requires it needs
 * `anthropic-version`, and a body on a route with a `content_type` must declare that media type.
 */
export function checkRequestHeaders(request: Request, route: Route, state: RequestState): void {
	if (route.requireVersion && !request.headers.get("anthropic-version")?.trim()) {
		state.decisions.validation = { outcome: "missing-anthropic-version" };
		throw new GuardError(400, "anthropic-version: header is required");
	}
	if (route.contentType === undefined || !hasBody(request)) return;
	const declared = (request.headers.get("content-type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
	if (declared !== route.contentType) {
		state.decisions.validation = { outcome: "wrong-content-type", content_type: declared || null };
		throw new GuardError(
			400,
			`content-type: ${request.method} ${route.path} takes ${route.contentType}, got ${declared ? JSON.stringify(declared) : "none"}`,
		);
	}
}
