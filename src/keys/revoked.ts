import { GuardError } from "../errors/guard-error";

/**
 * The limiter's word that a request's key is on its organisation's revocation list
 * (`revocations.ts`): the limiter learns the list on its calls to the usage object and says so
 * with this, no HTTP in it; {@link revokedKeyRefusal} makes the answer.
 */
export class RevokedKeyError extends Error {
	readonly orgId: string;
	readonly keyId: string | undefined;

	constructor(orgId: string, keyId: string | undefined) {
		super(`key ${keyId ?? "(none)"} of ${orgId} is revoked`);
		this.name = "RevokedKeyError";
		this.orgId = orgId;
		this.keyId = keyId;
	}
}

/**
 * The answer to a revoked key: `401 authentication_error`, worded as for a disabled key (no key is
 * told apart from another), with the `auth` decision the request log records.
 */
export function revokedKeyRefusal(revoked: RevokedKeyError): GuardError {
	return new GuardError(401, "invalid x-api-key", {
		type: "authentication_error",
		detail: { auth: { outcome: "revoked-key", org_id: revoked.orgId, key_id: revoked.keyId ?? null } },
	});
}
