import { GuardError } from "../../errors/guard-error";
import { KeyStore } from "../../keys/key-store";
import { type AdminContext, keysOf } from "../admin-context";
import { onlyFields, readJsonObject } from "../http/json";
import { createKey, type KeyView, keyIdFrom, keyView, knownScopes, orgIdFrom, statusFrom } from "../keys/key-admin";
import { tellRevocation } from "../usage/usage-calls";

/** `GET /_guard/api/keys[?org=ID]`: every key's record, oldest first; never a key or its hash. */
export async function listKeys(context: AdminContext): Promise<{ keys: KeyView[] }> {
	const org = context.url.searchParams.get("org");
	const records = await new KeyStore(keysOf(context.env)).all();
	const chosen = records.filter((record) => org === null || record.org_id === org).sort((a, b) => a.created_at.localeCompare(b.created_at));
	return { keys: chosen.map(keyView) };
}

/** `POST /_guard/api/keys`: creates a key; the answer holds it this once. */
export async function postKey(context: AdminContext): Promise<{ key: string; record: KeyView; notice: string }> {
	const body = await readJsonObject(context.request);
	const { key, record } = await createKey(new KeyStore(keysOf(context.env)), body, knownScopes(context.config));
	context.state.decisions.admin = { action: "create-key", key_id: record.id, org_id: record.org_id };
	return { key, record: keyView(record), notice: "The key is shown this once; only its SHA-256 is stored." };
}

/**
 * `PATCH /_guard/api/keys/:id` with `{ "status": "disabled" | "active" }`. Disabling also lists
 * the key with its organisation's usage object, so every isolate refuses it at its next call
 * there (within seconds) while KV and the key caches catch up.
 */
export async function patchKey(context: AdminContext, id: string): Promise<{ record: KeyView; revocation: string }> {
	const status = statusFrom(await readJsonObject(context.request));
	const updated = await new KeyStore(keysOf(context.env)).setStatus(id, status);
	if (updated === undefined) throw new GuardError(404, `No key ${id}.`);
	context.state.decisions.admin = { action: status === "disabled" ? "disable-key" : "enable-key", key_id: id, org_id: updated.org_id };
	const revocation = await propagate(context, updated.org_id, id, status === "disabled");
	return { record: keyView(updated), revocation };
}

/** `DELETE /_guard/api/keys/:id`: deletes the record and lists the key as revoked, like a disabled one. */
export async function deleteKey(context: AdminContext, id: string): Promise<{ id: string; deleted: true; revocation: string }> {
	const store = new KeyStore(keysOf(context.env));
	const record = await store.byId(id);
	if (record === undefined || !(await store.remove(id))) throw new GuardError(404, `No key ${id}.`);
	context.state.decisions.admin = { action: "delete-key", key_id: id, org_id: record.org_id };
	const revocation = await propagate(context, record.org_id, id, true);
	return { id, deleted: true, revocation };
}

/** Tells the organisation's usage object; says what happened (the KV change stands either way). */
async function propagate(context: AdminContext, orgId: string, keyId: string, revoked: boolean): Promise<string> {
	if (context.env.USAGE === undefined) return "no usage object is bound: isolates notice within KEY_CACHE_TTL_SECONDS and KV's propagation";
	try {
		await tellRevocation(context.env.USAGE, orgId, keyId, revoked);
	} catch (error) {
		context.state.decisions.admin_revocation = { outcome: "failed", error: String(error) };
		return "the usage object could not be told: isolates notice within KEY_CACHE_TTL_SECONDS and KV's propagation";
	}
	return revoked ? "listed: every isolate refuses the key at its next call to the organisation's usage object" : "restored";
}

/**
 * `POST /_guard/api/revocations` with `{ "org_id", "key_id", "revoked": true | false }`: tells the
 * organisation's usage object only (the key store is left alone). For `npm run keys`, which
 * changes KV itself and then asks the running guard to spread the word.
 */
export async function postRevocation(context: AdminContext): Promise<{ org_id: string; key_id: string; revoked: boolean; revocation: string }> {
	const body = await readJsonObject(context.request);
	onlyFields(body, ["org_id", "key_id", "revoked"]);
	const orgId = orgIdFrom(typeof body.org_id === "string" ? body.org_id : undefined);
	const keyId = keyIdFrom(typeof body.key_id === "string" ? body.key_id : undefined);
	const revoked = body.revoked ?? true;
	if (typeof revoked !== "boolean") throw new GuardError(400, "revoked: must be true or false");
	if (context.env.USAGE === undefined) throw new GuardError(500, "The guard's usage objects (USAGE) are not bound.", { type: "api_error" });
	await tellRevocation(context.env.USAGE, orgId, keyId, revoked);
	context.state.decisions.admin = { action: revoked ? "revoke-key" : "restore-key", key_id: keyId, org_id: orgId };
	return { org_id: orgId, key_id: keyId, revoked, revocation: revoked ? "listed" : "restored" };
}
