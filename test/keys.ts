import { hashApiKey } from "../src/keys/api-key";
import type { KeyRecord } from "../src/keys/key-record";
import { KeyStore } from "../src/keys/key-store";

/** A key with every scope, seeded for every test file (test/setup.ts); the helpers send it. */
export const TEST_KEY = "sk-guard-TestKeyWithEveryScope0000000000000000";
export const ALL_SCOPES = ["messages", "batches", "files", "models"];

/** Stores a key's record in a KV namespace, as `npm run keys -- create` would. */
export async function seedKey(
	kv: KVNamespace,
	key: string,
	fields: Partial<Omit<KeyRecord, "hash">> & { id: string; org_id: string },
): Promise<KeyRecord> {
	const record: KeyRecord = {
		hash: await hashApiKey(key),
		workspace_id: null,
		name: fields.id,
		scopes: ALL_SCOPES,
		status: "active",
		created_at: "2026-11-25T00:00:00.000Z",
		...fields,
	};
	await new KeyStore(kv).save(record);
	return record;
}
