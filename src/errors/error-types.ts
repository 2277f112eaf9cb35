/**
 * The `error.type` values of the SPEC's error table, plus the newer types the guard answers.
 * Clients must tolerate new values, so this set may grow.
 */
export type ErrorType =
	| "invalid_request_error"
	| "authentication_error"
	| "permission_error"
	| "not_found_error"
	| "request_too_large"
	| "rate_limit_error"
	| "api_error"
	| "timeout_error"
	| "overloaded_error";

const KNOWN_TYPES: ReadonlySet<string> = new Set<ErrorType>([
	"invalid_request_error",
	"authentication_error",
	"permission_error",
	"not_found_error",
	"request_too_large",
	"rate_limit_error",
	"api_error",
	"timeout_error",
	"overloaded_error",
]);

/** Whether `value` is an error type the guard knows by name. */
export function isKnownErrorType(value: unknown): value is ErrorType {
	return typeof value === "string" && KNOWN_TYPES.has(value);
}

/**
 * The error type the SPEC's table gives a status: listed statuses by name, any other 4xx
 * `invalid_request_error`, and any other 5xx `api_error`. The guard's own timeouts name
 * `timeout_error` explicitly rather than through this table.
 */
export function errorTypeForStatus(status: number): ErrorType {
	switch (status) {
		case 400:
			return "invalid_request_error";
		case 401:
			return "authentication_error";
		case 403:
			return "permission_error";
		case 404:
			return "not_found_error";
		case 413:
			return "request_too_large";
		case 429:
			return "rate_limit_error";
		case 529:
			return "overloaded_error";
		default:
			return status >= 400 && status < 500 ? "invalid_request_error" : "api_error";
	}
}

/**
 * The `x-should-retry` value the official SDKs obey: retry 429 and every 5xx (529 included),
 * never any other 4xx, whose request would fail the same way again.
 */
export function shouldRetry(status: number): boolean {
	return status === 429 || status >= 500;
}
