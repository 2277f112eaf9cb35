import { describe, expect, it, vi } from "vitest";
import { hashApiKey } from "../../src/keys/api-key";
import { TEST_KEY } from "../keys";
import { ADMIN_TOKEN, admin, apiCall } from "./helpers";

const ORIGIN_SECRET = "origin-token-never-shown-41c7";

/** Every header and the body of an answer, as one text. */
async function whole(response: Response): Promise<string> {
	return `${response.status}\n${[...response.headers].map(([name, value]) => `${name}: ${value}`).join("\n")}\n\n${await response.text()}`;
}

describe("no admin answer holds a key or a token", () => {
	it("on every endpoint, success and error alike; the one exception is the created key, in its creation's answer only", async () => {
		const spy = vi.spyOn(console, "log");
		try {
			const overrides = { ORIGIN_TOKEN: ORIGIN_SECRET };
			const created = await admin("/_guard/api/keys", { method: "POST", json: { org_id: "org_secrets", scopes: ["models"] } }, overrides);
			expect(created.status).toBe(201);
			const { key, record } = (await created.json()) as { key: string; record: { id: string } };
			expect((await apiCall(key)).status).toBe(200);
			const answers = [
				await admin("/_guard/api/orgs", {}, overrides),
				await admin("/_guard/api/orgs/org_secrets?minutes=60&days=90", {}, overrides),
				await admin("/_guard/api/orgs/org_test", {}, overrides),
				await admin("/_guard/api/keys", {}, overrides),
				await admin("/_guard/api/keys?org=org_secrets", {}, overrides),
				await admin(`/_guard/api/keys/${record.id}`, { method: "PATCH", json: { status: "disabled" } }, overrides),
				await admin(`/_guard/api/keys/${record.id}`, { method: "PATCH", json: { status: "active" } }, overrides),
				await admin("/_guard/api/revocations", { method: "POST", json: { org_id: "org_secrets", key_id: record.id } }, overrides),
				await admin("/_guard/api/health", {}, overrides),
				await admin("/_guard/api/keys", { method: "POST", json: { org_id: "org_secrets", scopes: ["nope"] } }, overrides),
				await admin("/_guard/api/keys", { method: "PUT" }, overrides),
				await admin("/_guard/api/nothing", {}, overrides),
				await admin("/_guard/api/health", { token: `${ADMIN_TOKEN}x` }, overrides),
				await admin("/_guard/api/health", { token: null }, overrides),
				await admin("/_guard/", { token: null }, overrides),
				await admin(`/_guard/api/keys/${record.id}`, { method: "DELETE" }, overrides),
			];
			const secrets = [TEST_KEY, key, ADMIN_TOKEN, ORIGIN_SECRET, await hashApiKey(TEST_KEY), await hashApiKey(key)];
			for (const answer of answers) {
				const text = await whole(answer);
				for (const secret of secrets) expect(text, text.slice(0, 200)).not.toContain(secret);
			}
			// Nor does any log line of these requests.
			const logged = JSON.stringify(spy.mock.calls);
			for (const secret of secrets) expect(logged).not.toContain(secret);
		} finally {
			spy.mockRestore();
		}
	});
});
