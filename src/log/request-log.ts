import { declaredLength } from "../lib/content-length";
import type { RequestState } from "../lib/request-state";

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
	/** Request body bytes the guard read (what reached the origin, or the count when it stopped). */
	bytes_in: number;
	/** Response body bytes sent to the client, when known (null for a body of unknown length). */
	bytes_out: number | null;
	/** Milliseconds from arrival to the origin's response headers; null when the origin was not reached. */
	origin_ms: number | null;
	/** Milliseconds from arrival to the end of the response (its last byte, for a proxied body). */
	duration_ms: number;
	/** Each decision taken (cap, auth, limit, shed, breaker, stream, ...), with its numbers. */
	decisions: Record<string, unknown>;
}

/** What a log line needs to know of the response: its status and, when the guard wrote it, its length. */
export function requestLogLine(state: RequestState, request: Request, response: Response, bytesOut: number | undefined): RequestLogLine {
	const length = bytesOut ?? declaredLength(response.headers);
	return {
		request_id: state.requestId,
		method: request.method,
		path: state.url.pathname,
		route: state.route ?? null,
		origin: state.origin ?? null,
		org_id: state.orgId ?? null,
		key_id: state.keyId ?? null,
		status: response.status,
		error_type: state.errorType ?? null,
		bytes_in: state.bytesIn?.() ?? 0,
		bytes_out: typeof length === "number" ? length : response.body === null ? 0 : null,
		origin_ms: state.originMs ?? null,
		duration_ms: Date.now() - state.startedAt,
		decisions: state.decisions,
	};
}

/**
 * Writes the request's log line with `console.log` of an object (Workers Logs indexes its fields)
 * and, when an Analytics Engine dataset is bound, one data point with the same facts.
 */
export function logRequest(line: RequestLogLine, analytics: AnalyticsEngineDataset | undefined): void {
	console.log(line);
	analytics?.writeDataPoint(analyticsPoint(line));
}

/**
 * The Analytics Engine data point of a log line. Blobs (strings): route, method, status class,
 * error type, organisation, key ID, origin; doubles: status, bytes in, bytes out, origin ms,
 * duration ms; the index (the sampling key) is the organisation, or the route for anonymous calls.
 */
export function analyticsPoint(line: RequestLogLine): AnalyticsEngineDataPoint {
	return {
		indexes: [line.org_id ?? line.route ?? "none"],
		blobs: [line.route ?? "", line.method, `${Math.floor(line.status / 100)}xx`, line.error_type ?? "", line.org_id ?? "", line.key_id ?? "", line.origin ?? ""],
		doubles: [line.status, line.bytes_in, line.bytes_out ?? -1, line.origin_ms ?? -1, line.duration_ms],
	};
}
