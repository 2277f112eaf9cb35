import type { GuardConfig } from "../config/guard-config";
import type { Env } from "../env";
import { GuardError } from "../errors/guard-error";
import type { RequestState } from "../lib/request-state";
import type { Overload } from "../overload/admission";

/** One admin request and what its handler may read. */
export interface AdminContext {
	readonly request: Request;
	readonly url: URL;
	readonly env: Env;
	readonly config: GuardConfig;
	readonly overload: Overload;
	readonly state: RequestState;
}

/** The `KEYS` binding, or `500` saying it is missing. */
export function keysOf(env: Env): KVNamespace {
	if (env.KEYS === undefined) throw new GuardError(500, "The guard's key store (KEYS) is not bound.", { type: "api_error" });
	return env.KEYS;
}
