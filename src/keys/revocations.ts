import { BoundedMap } from "../lib/bounded-map";

/**
 * Fast key revocation. Disabling or deleting a key (admin API, `npm run keys`) also tells its
 * organisation's usage object, which keeps the key ID on a short list; every isolate learns the
 * list on its next call to that object (exact mode: the next request; lease mode: the next lease
 * renewal or settlement) and refuses the key from then on, while Workers KV and the isolates' key
 * caches catch up. An entry lasts {@link REVOCATION_TTL_MS}, longer than KV's propagation (about
 * 60 s) plus the key cache (at most 60 s), after which the key's stored status decides alone.
 */

/** How long a revocation is kept by the object and by isolates (ms). */
export const REVOCATION_TTL_MS = 150_000;
/** At most this many keys are listed per organisation (the oldest give way). */
export const MAX_REVOKED_KEYS = 1000;

/** The organisation's revoked keys as the object sends them: a version, and each key's time left. */
export interface RevocationList {
	readonly version: number;
	readonly keys: readonly { readonly keyId: string; readonly ttlMs: number }[];
}

const KEY_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/** The object's side: the list in its SQLite, with a version that changes on every revoke and restore. */
export class RevocationStore {
	#keys: Map<string, number> | undefined;
	#version = 0;

	constructor(private readonly sql: SqlStorage) {}

	/** Lists `keyId` as revoked until `now` + the TTL; answers the new list. */
	revoke(keyId: string, now: number): RevocationList {
		if (!KEY_ID.test(keyId)) throw new RangeError(`keyId must be a key ID such as key_..., got ${JSON.stringify(keyId)}`);
		const keys = this.#load(now);
		keys.delete(keyId);
		keys.set(keyId, now + REVOCATION_TTL_MS);
		this.sql.exec("INSERT INTO revoked_keys (key_id, until) VALUES (?, ?) ON CONFLICT (key_id) DO UPDATE SET until = excluded.until", keyId, now + REVOCATION_TTL_MS);
		while (keys.size > MAX_REVOKED_KEYS) {
			const oldest = keys.keys().next().value as string;
			keys.delete(oldest);
			this.sql.exec("DELETE FROM revoked_keys WHERE key_id = ?", oldest);
		}
		this.#bump();
		return this.list(now);
	}

	/** Takes `keyId` off the list (the key was enabled again); answers the new list. */
	restore(keyId: string, now: number): RevocationList {
		const keys = this.#load(now);
		if (keys.delete(keyId)) this.sql.exec("DELETE FROM revoked_keys WHERE key_id = ?", keyId);
		this.#bump();
		return this.list(now);
	}

	/** Whether `keyId` is on the list now. */
	has(keyId: string | undefined, now: number): boolean {
		if (keyId === undefined) return false;
		const until = this.#load(now).get(keyId);
		return until !== undefined && until > now;
	}

	/** The whole list now. */
	list(now: number): RevocationList {
		const keys = [...this.#load(now)].filter(([, until]) => until > now).map(([keyId, until]) => ({ keyId, ttlMs: until - now }));
		return { version: this.#version, keys };
	}

	/** The list for an isolate that knows version `seen`: `undefined` when it is current. */
	news(seen: number | undefined, now: number): RevocationList | undefined {
		this.#load(now);
		if (seen === this.#version || (seen === undefined && this.#version === 0)) return undefined;
		return this.list(now);
	}

	/** Drops expired entries; answers when the next one expires, or `undefined` when none is left. */
	prune(now: number): number | undefined {
		const keys = this.#load(now);
		let next: number | undefined;
		for (const [keyId, until] of keys) {
			if (until <= now) {
				keys.delete(keyId);
				this.sql.exec("DELETE FROM revoked_keys WHERE key_id = ?", keyId);
			} else {
				next = next === undefined ? until : Math.min(next, until);
			}
		}
		return next;
	}

	/** Forgets what was loaded (after the object's storage was deleted). */
	reset(): void {
		this.#keys = undefined;
	}

	#load(now: number): Map<string, number> {
		if (this.#keys !== undefined) return this.#keys;
		this.sql.exec("CREATE TABLE IF NOT EXISTS revoked_keys (key_id TEXT PRIMARY KEY, until INTEGER NOT NULL)");
		this.sql.exec("CREATE TABLE IF NOT EXISTS revocation_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)");
		const keys = new Map<string, number>();
		for (const row of this.sql.exec<{ key_id: string; until: number }>("SELECT key_id, until FROM revoked_keys ORDER BY until")) {
			if (row.until > now) keys.set(row.key_id, row.until);
		}
		for (const row of this.sql.exec<{ version: number }>("SELECT version FROM revocation_version")) this.#version = row.version;
		this.#keys = keys;
		return keys;
	}

	#bump(): void {
		// Never 0 again once something was listed, so an isolate that saw nothing asks for it.
		this.#version = Math.max(this.#version + 1, Date.now());
		this.sql.exec("INSERT INTO revocation_version (id, version) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET version = excluded.version", this.#version);
	}
}

/**
 * The isolate's side: what it learnt of each organisation's list, by version. One per isolate
 * ({@link revocationBook}), shared by every limiter client and by the admin API, which writes a
 * key it disables here at once.
 */
export class RevocationBook {
	readonly #orgs: BoundedMap<string, { version: number; keys: Map<string, number> }>;

	constructor(maxOrgs = 10_000) {
		this.#orgs = new BoundedMap(maxOrgs);
	}

	/** The version of `orgId`'s list this isolate knows (`undefined`: none yet). */
	seen(orgId: string): number | undefined {
		return this.#orgs.get(orgId)?.version;
	}

	/** Replaces what is known of `orgId`'s list. */
	learn(orgId: string, list: RevocationList | undefined, now: number): void {
		if (list === undefined || typeof list.version !== "number" || !Array.isArray(list.keys)) return;
		const known = this.#orgs.get(orgId);
		if (known !== undefined && known.version > list.version) return;
		const keys = new Map<string, number>();
		for (const { keyId, ttlMs } of list.keys.slice(0, MAX_REVOKED_KEYS)) {
			if (typeof keyId === "string" && typeof ttlMs === "number" && ttlMs > 0) keys.set(keyId, now + Math.min(ttlMs, REVOCATION_TTL_MS));
		}
		this.#orgs.set(orgId, { version: list.version, keys });
	}

	/** Whether this isolate knows `keyId` of `orgId` to be revoked now. */
	isRevoked(orgId: string, keyId: string | undefined, now: number): boolean {
		if (keyId === undefined) return false;
		const until = this.#orgs.get(orgId)?.keys.get(keyId);
		return until !== undefined && until > now;
	}
}

/** The isolate's book. */
export const revocationBook = new RevocationBook();
