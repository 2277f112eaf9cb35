import type { GuardConfig } from "../../config/guard-config";
import { GuardError } from "../../errors/guard-error";
import { generateApiKey, hashApiKey, newKeyId } from "../../keys/api-key";
import type { KeyRecord } from "../../keys/key-record";
import type { KeyStore } from "../../keys/key-store";
import { onlyFields } from "../http/json";

/** A key record as the admin API shows it: everything but the key's hash (and never the key). */
export type KeyView = Omit<KeyRecord, "hash">;

/** What `npm run keys` accepts for organisation and workspace IDs. */
const NAME = /^[A-Za-z0-9_.:-]{1,128}$/;
const MAX_LABEL_CHARS = 200;

/** The record without its hash. */
export function keyView(record: KeyRecord): KeyView {
	const { hash: _hash, ...view } = record;
	return view;
}

/** The scopes a key may have: the route groups of the configuration. */
export function knownScopes(config: GuardConfig): string[] {
	return [...new Set(config.routes.map((route) => route.group).filter((group): group is string => group !== undefined))];
}

/**
 * Creates a key from `{ org_id, scopes, name?, workspace_id? }`, as `npm run keys -- create` does:
 * the key is answered this once and stored only as its SHA-256.
 */
export async function createKey(store: KeyStore, body: Record<string, unknown>, scopes: readonly string[]): Promise<{ key: string; record: KeyRecord }> {
	onlyFields(body, ["org_id", "scopes", "name", "workspace_id"]);
	const orgId = body.org_id;
	if (typeof orgId !== "string" || !NAME.test(orgId)) throw new GuardError(400, "org_id: must be an organisation ID of 1 to 128 letters, digits, _ . : -");
	const workspace = body.workspace_id ?? null;
	if (workspace !== null && (typeof workspace !== "string" || !NAME.test(workspace))) {
		throw new GuardError(400, "workspace_id: must be null or a workspace ID of 1 to 128 letters, digits, _ . : -");
	}
	const name = body.name ?? "";
	if (typeof name !== "string" || name.length > MAX_LABEL_CHARS || hasControlCharacter(name)) {
		throw new GuardError(400, `name: must be text of at most ${MAX_LABEL_CHARS} characters, without control characters`);
	}
	const asked = body.scopes;
	if (!Array.isArray(asked) || asked.length === 0 || !asked.every((scope) => typeof scope === "string")) {
		throw new GuardError(400, `scopes: must be a non-empty array of scopes (${scopes.join(", ")})`);
	}
	const unknown = asked.find((scope) => !scopes.includes(scope));
	if (unknown !== undefined) throw new GuardError(400, `scopes: unknown scope ${JSON.stringify(unknown.slice(0, 64))}; scopes are ${scopes.join(", ")}`);
	const key = generateApiKey();
	const record: KeyRecord = {
		hash: await hashApiKey(key),
		id: newKeyId(),
		org_id: orgId,
		workspace_id: workspace,
		name,
		scopes: [...new Set(asked as string[])],
		status: "active",
		created_at: new Date().toISOString(),
	};
	await store.save(record);
	return { key, record };
}

/** `{ "status": "disabled" }` or `{ "status": "active" }`. */
export function statusFrom(body: Record<string, unknown>): KeyRecord["status"] {
	onlyFields(body, ["status"]);
	if (body.status !== "active" && body.status !== "disabled") throw new GuardError(400, 'status: must be "active" or "disabled"');
	return body.status;
}

/** A key ID from the path, or `404`. */
export function keyIdFrom(segment: string | undefined): string {
	if (segment === undefined || !NAME.test(segment)) throw new GuardError(404, "No such key.");
	return segment;
}

/** An organisation ID from the path, or `404`. */
export function orgIdFrom(segment: string | undefined): string {
	if (segment === undefined || !NAME.test(segment)) throw new GuardError(404, "No such organisation.");
	return segment;
}

function hasControlCharacter(text: string): boolean {
	for (let i = 0; i < text.length; i++) {
		const code = text.charCodeAt(i);
		if (code < 0x20 || code === 0x7f) return true;
	}
	return false;
}
