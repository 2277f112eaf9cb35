import { GuardError } from "../../errors/guard-error";
import type { RequestState } from "../../lib/request-state";

/** The message of a `401` to an admin request without a bearer token. */
export const MISSING_TOKEN_MESSAGE = "The admin API needs the header authorization: Bearer <ADMIN_TOKEN>.";
/** The message of a `401` to an admin request with a wrong token. */
export const WRONG_TOKEN_MESSAGE = "invalid admin token";

/** The bearer token of `authorization: Bearer <token>`, or `undefined`. */
export function bearerToken(headers: Headers): string | undefined {
	const found = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(headers.get("authorization") ?? "");
	return found?.[1];
}

/**
 * Admits an admin request whose bearer token is `ADMIN_TOKEN`, or throws `401
 * authentication_error` in the envelope. The two are compared as SHA-256 digests with
 * `crypto.subtle.timingSafeEqual`: equal lengths whatever was sent, so neither the token's length
 * nor how much of it matched shows in the time taken. The token is never logged or echoed.
 */
export async function requireAdmin(headers: Headers, adminToken: string, state: RequestState): Promise<void> {
	const presented = bearerToken(headers);
	if (presented === undefined) {
		state.decisions.admin_auth = { outcome: "missing-token" };
		throw new GuardError(401, MISSING_TOKEN_MESSAGE);
	}
	if (!(await sameSecret(presented, adminToken))) {
		state.decisions.admin_auth = { outcome: "wrong-token" };
		throw new GuardError(401, WRONG_TOKEN_MESSAGE);
	}
	state.decisions.admin_auth = { outcome: "admitted" };
}

/** Whether two secrets are equal, in time that depends on neither. */
export async function sameSecret(a: string, b: string): Promise<boolean> {
	const encoder = new TextEncoder();
	const [left, right] = await Promise.all([crypto.subtle.digest("SHA-256", encoder.encode(a)), crypto.subtle.digest("SHA-256", encoder.encode(b))]);
	return crypto.subtle.timingSafeEqual(left, right);
}
