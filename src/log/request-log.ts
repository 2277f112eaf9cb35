import type { RequestState } from "../pipeline/request-state";

/** One structured log line per request; Workers Logs indexes its fields. Never holds a secret. */
export interface RequestLogLine {
	request_id: string;
	method: string;
	path: string;
	route: string | null;
	origin: string | null;
	org_id: string | null;
	key_id: string | null;
	status: number;
	error_type: string | null;
	duration_ms: number;
	decisions: Record<string, unknown>;
}

/** Writes the request's log line with `console.log` of an object. */
export function logRequest(state: RequestState, request: Request, response: Response): void {
	const line: RequestLogLine = {
		request_id: state.requestId,
		method: request.method,
		path: new URL(request.url).pathname,
		route: state.route ?? null,
		origin: state.origin ?? null,
		org_id: state.orgId ?? null,
		key_id: state.keyId ?? null,
		status: response.status,
		error_type: state.errorType ?? null,
		duration_ms: Date.now() - state.startedAt,
		decisions: state.decisions,
	};
	console.log(line);
}
