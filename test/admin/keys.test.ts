import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { readEnvelope } from "../helpers";
import { seedKey } from "../keys";
import { newOrg, usageNamespace } from "../limits/helpers";
import { admin, adminJson, apiCall } from "./helpers";

const KEY = /^sk-guard-[0-9A-Za-z]{40}$/;

function kv(): KVNamespace {
	if (env.KEYS === undefined) throw new Error("these tests need the KEYS binding");
	return env.KEYS;
}

async function freshKey(orgId = newOrg()): Promise<{ key: string; id: string; orgId: string }> {
	const id = `key_${crypto.randomUUID().replaceAll("-", "")}`;
	const key = `sk-guard-${crypto.randomUUID().replaceAll("-", "")}${"0".repeat(8)}`;
	await seedKey(kv(), key, { id, org_id: orgId });
	return { key, id, orgId };
}

/** The auth decision the guard logged for a request it answered. */
async function authOutcome(call: () => Promise<Response>): Promise<{ status: number; outcome: unknown }> {
	const spy = vi.spyOn(console, "log");
	try {
		const response = await call();
		await response.text();
		const line = spy.mock.calls.map(([first]) => first as { request_id?: string; decisions?: { auth?: { outcome?: string } } }).find((entry) => entry?.request_id === response.headers.get("request-id"));
		return { status: response.status, outcome: line?.decisions?.auth?.outcome };
	} finally {
		spy.mockRestore();
	}
}

describe("GET /_guard/api/keys", () => {
	it("lists the records of npm run keys, without hashes, filtered by ?org=", async () => {
		const mine = await freshKey();
		const all = await adminJson<{ keys: Record<string, unknown>[] }>("/_guard/api/keys", 200);
		expect(all.keys.find((key) => key.id === "key_test_all")).toMatchObject({ org_id: "org_test", status: "active" });
		for (const key of all.keys) expect(key).not.toHaveProperty("hash");
		const filtered = await adminJson<{ keys: { id: string }[] }>(`/_guard/api/keys?org=${mine.orgId}`, 200);
		expect(filtered.keys.map((key) => key.id)).toEqual([mine.id]);
	});
});

describe("POST /_guard/api/keys", () => {
	it("creates a key that works at once, shown in this answer only", async () => {
		const orgId = newOrg();
		const created = await adminJson<{ key: string; record: { id: string; org_id: string; scopes: string[]; status: string } }>("/_guard/api/keys", 201, {
			method: "POST",
			json: { org_id: orgId, scopes: ["models"], name: "from the console" },
		});
		expect(created.key).toMatch(KEY);
		expect(created.record).toMatchObject({ org_id: orgId, scopes: ["models"], status: "active", name: "from the console" });
		expect((await apiCall(created.key)).status).toBe(200);
		const listed = await admin(`/_guard/api/keys?org=${orgId}`);
		const text = await listed.text();
		expect(text).toContain(created.record.id);
		expect(text).not.toContain(created.key);
	});

	it("refuses a bad body with 400 saying what is wrong, and a body over 16 KiB with 413", async () => {
		const cases: [unknown, string][] = [
			[{ scopes: ["models"] }, "org_id: must be an organisation ID"],
			[{ org_id: "org x", scopes: ["models"] }, "org_id: must be an organisation ID"],
			[{ org_id: "org_a", scopes: [] }, "scopes: must be a non-empty array"],
			[{ org_id: "org_a", scopes: ["admin"] }, 'scopes: unknown scope "admin"'],
			[{ org_id: "org_a", scopes: ["models"], scope: "x" }, "scope: unknown field"],
			[{ org_id: "org_a", scopes: ["models"], name: "a\nb" }, "name: must be text"],
			[[1, 2], "The request body must be a JSON object."],
		];
		for (const [json, message] of cases) {
			const response = await admin("/_guard/api/keys", { method: "POST", json });
			expect(response.status, JSON.stringify(json)).toBe(400);
			expect((await readEnvelope(response)).error.message).toContain(message);
		}
		const text = await admin("/_guard/api/keys", { method: "POST", body: "{}", headers: { "content-type": "text/plain" } });
		expect(text.status).toBe(400);
		const huge = await admin("/_guard/api/keys", { method: "POST", json: { org_id: "org_a", scopes: ["models"], name: "x".repeat(17 * 1024) } });
		expect(huge.status).toBe(413);
	});

	it("answers 405 with allow for a method the endpoint does not take", async () => {
		const response = await admin("/_guard/api/keys", { method: "PUT", json: {} });
		expect(response.status).toBe(405);
		expect(response.headers.get("allow")).toBe("GET, POST");
	});
});

describe("PATCH and DELETE /_guard/api/keys/:id: a disabled key stops at once", () => {
	it("refuses a disabled key on its next request, while the isolate's key cache still holds it as active", async () => {
		const { key, id, orgId } = await freshKey();
		expect((await apiCall(key)).status).toBe(200);
		const patched = await adminJson<{ record: { status: string }; revocation: string }>(`/_guard/api/keys/${id}`, 200, { method: "PATCH", json: { status: "disabled" } });
		expect(patched.record.status).toBe("disabled");
		expect(patched.revocation).toMatch(/^listed/);
		// The usage object lists it: every other isolate learns it there on its next call (its
		// answers carry the list: test/admin/revocation.test.ts, with a limiter of its own).
		const report = await usageNamespace().get(usageNamespace().idFromName(orgId)).consoleReport({ pools: [], minutes: 1, days: 1 });
		expect(report.revocations.keys.map((entry) => entry.keyId)).toContain(id);
		const refused = await authOutcome(() => apiCall(key));
		// The key cache (30 s) still says active: the revocation list refused it (here, this isolate's
		// copy, which the PATCH wrote at once).
		expect(refused).toEqual({ status: 401, outcome: "revoked-key" });
		const enabled = await adminJson<{ record: { status: string } }>(`/_guard/api/keys/${id}`, 200, { method: "PATCH", json: { status: "active" } });
		expect(enabled.record.status).toBe("active");
		expect((await apiCall(key)).status).toBe(200);
	});

	it("refuses a deleted key on its next request, and a second delete is 404", async () => {
		const { key, id } = await freshKey();
		expect((await apiCall(key)).status).toBe(200);
		expect(await adminJson(`/_guard/api/keys/${id}`, 200, { method: "DELETE" })).toMatchObject({ id, deleted: true });
		expect((await authOutcome(() => apiCall(key))).status).toBe(401);
		expect((await admin(`/_guard/api/keys/${id}`, { method: "DELETE" })).status).toBe(404);
	});

	it("answers 404 for an unknown key and 400 for a bad status", async () => {
		expect((await admin("/_guard/api/keys/key_nobody", { method: "PATCH", json: { status: "disabled" } })).status).toBe(404);
		const { id } = await freshKey();
		const bad = await admin(`/_guard/api/keys/${id}`, { method: "PATCH", json: { status: "revoked" } });
		expect(bad.status).toBe(400);
		expect((await readEnvelope(bad)).error.message).toBe('status: must be "active" or "disabled"');
	});
});

describe("POST /_guard/api/revocations (what npm run keys calls after changing KV)", () => {
	it("lists a key with its organisation's usage object only, and takes it off again", async () => {
		const { key, id, orgId } = await freshKey();
		expect((await apiCall(key)).status).toBe(200);
		expect(await adminJson("/_guard/api/revocations", 200, { method: "POST", json: { org_id: orgId, key_id: id } })).toMatchObject({ revoked: true });
		expect((await authOutcome(() => apiCall(key))).outcome).toBe("revoked-key");
		await adminJson("/_guard/api/revocations", 200, { method: "POST", json: { org_id: orgId, key_id: id, revoked: false } });
		expect((await apiCall(key)).status).toBe(200);
		expect((await admin("/_guard/api/revocations", { method: "POST", json: { org_id: orgId } })).status).toBe(404);
	});
});
