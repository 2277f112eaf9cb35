import type { GuardConfig } from "../config/guard-config";
import type { Route } from "../config/route-table";
import { GuardError } from "../errors/guard-error";
import type { RequestState } from "../lib/request-state";
import { hashApiKey } from "./api-key";
import { TtlCache } from "./key-cache";
import type { KeyRecord } from "./key-record";
import { KeyStore } from "./key-store";

/** Who a request is from, once its key is admitted. */
export interface Identity {
	readonly orgId: string;
	readonly keyId: string;
	readonly workspaceId: string | null;
}

const caches = new WeakMap<KVNamespace, { ttlMs: number; cache: TtlCache<KeyRecord | null> }>();

function cacheFor(keys: KVNamespace, ttlMs: number): TtlCache<KeyRecord | null> {
	const found = caches.get(keys);
	if (found && found.ttlMs === ttlMs) return found.cache;
	const cache = new TtlCache<KeyRecord | null>(ttlMs);
	caches.set(keys, { ttlMs, cache });
	return cache;
}

/** The key a request presents: `x-api-key`, else `authorization: Bearer <key>`. */
export function presentedKey(headers: Headers): string | undefined {
	const direct = headers.get("x-api-key")?.trim();
	if (direct) return direct;
	const bearer = /^Bearer\s+(\S+)\s*$/i.exec(headers.get("authorization") ?? "");
	return bearer?.[1];
}

/**
 * Admits a request's API key for a route, in the SPEC's order: no key `401`, an unknown or
 * disabled key `401`, a key without the route's scope `403`. Lookups go by the key's SHA-256 and
 * are cached in the isolate for the configured time, misses included. The key itself is never
 * logged nor put in a message.
 */
export async function authenticate(request: Request, route: Route, config: GuardConfig, keys: KVNamespace, state: RequestState): Promise<Identity> {
	const key = presentedKey(request.headers);
	if (key === undefined) {
		state.decisions.auth = { outcome: "missing-key" };
		throw new GuardError(401, "x-api-key header is required");
	}
	const hash = await hashApiKey(key);
	const record = await lookup(keys, hash, config.keyCacheTtlMs);
	if (record === null || !sameHash(record.hash, hash)) {
		state.decisions.auth = { outcome: "unknown-key" };
		throw new GuardError(401, "invalid x-api-key");
	}
	const who = { org_id: record.org_id, key_id: record.id };
	if (record.status !== "active") {
		state.decisions.auth = { outcome: "disabled-key", ...who };
		throw new GuardError(401, "invalid x-api-key");
	}
	// The key is the organisation's: even its scope refusal says whose, as the API's answers do.
	state.responseHeaders["anthropic-organization-id"] = record.org_id;
	const scope = route.group ?? "";
	if (!record.scopes.includes(scope)) {
		state.decisions.auth = { outcome: "missing-scope", scope, ...who };
		throw new GuardError(403, `This API key does not have the "${scope}" scope, which ${request.method} ${route.path} requires.`);
	}
	state.decisions.auth = { outcome: "admitted", ...who };
	state.orgId = record.org_id;
	state.keyId = record.id;
	return { orgId: record.org_id, keyId: record.id, workspaceId: record.workspace_id };
}

async function lookup(keys: KVNamespace, hash: string, ttlMs: number): Promise<KeyRecord | null> {
	const cache = cacheFor(keys, ttlMs);
	const cached = cache.get(hash);
	if (cached) return cached.value;
	const record = (await new KeyStore(keys).byHash(hash)) ?? null;
	cache.set(hash, record);
	return record;
}

/**
 * The record is found by hash, so no secret is compared byte by byte on the way; the stored hash
 * is still checked against the computed one in constant time, so a mis-keyed record cannot admit
 * a key, and the check does not leak how much of it matched.
 */
function sameHash(stored: string, computed: string): boolean {
	const a = new TextEncoder().encode(stored);
	const b = new TextEncoder().encode(computed);
	return a.byteLength === b.byteLength && crypto.subtle.timingSafeEqual(a, b);
}
