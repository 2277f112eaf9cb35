import { idKey, type KeyRecord, parseKeyRecord, recordKey } from "./key-record";

/** The part of Workers KV the key store uses; Miniflare's KV and a wrangler adapter fit it too. */
export interface KeyValueStore {
	get(key: string): Promise<string | null>;
	put(key: string, value: string): Promise<void>;
	delete(key: string): Promise<void>;
	list(options: { prefix: string; cursor?: string }): Promise<{ keys: { name: string }[]; list_complete: boolean; cursor?: string }>;
}

/**
 * Keys stored hashed in KV: `key:<sha256>` holds the record, `id:<key id>` the hash, so a key is
 * found by its hash on the request path and by its ID from the command line.
 */
export class KeyStore {
	constructor(private readonly kv: KeyValueStore) {}

	/** The record for a key's hash, or `undefined`. */
	async byHash(hash: string): Promise<KeyRecord | undefined> {
		return parseKeyRecord(await this.kv.get(recordKey(hash)));
	}

	/** The record for a key ID, or `undefined`. */
	async byId(id: string): Promise<KeyRecord | undefined> {
		const hash = await this.kv.get(idKey(id));
		return hash === null ? undefined : this.byHash(hash);
	}

	/** Stores a record and its ID index. */
	async save(record: KeyRecord): Promise<void> {
		await this.kv.put(recordKey(record.hash), JSON.stringify(record));
		await this.kv.put(idKey(record.id), record.hash);
	}

	/** Sets a key's status; `undefined` when there is no such key. */
	async setStatus(id: string, status: KeyRecord["status"]): Promise<KeyRecord | undefined> {
		const record = await this.byId(id);
		if (record === undefined) return undefined;
		const updated = { ...record, status };
		await this.save(updated);
		return updated;
	}

	/** Deletes a key; `false` when there is no such key. */
	async remove(id: string): Promise<boolean> {
		const hash = await this.kv.get(idKey(id));
		if (hash === null) return false;
		await this.kv.delete(recordKey(hash));
		await this.kv.delete(idKey(id));
		return true;
	}

	/** Every stored record. */
	async all(): Promise<KeyRecord[]> {
		const records: KeyRecord[] = [];
		let cursor: string | undefined;
		do {
			const page = await this.kv.list({ prefix: "id:", ...(cursor ? { cursor } : {}) });
			for (const { name } of page.keys) {
				const record = await this.byId(name.slice("id:".length));
				if (record) records.push(record);
			}
			cursor = page.list_complete ? undefined : page.cursor;
		} while (cursor);
		return records;
	}
}
