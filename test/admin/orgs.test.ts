import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { OrgView } from "../../src/admin/usage/org-view";
import { readEnvelope, startGuard } from "../helpers";
import { seedKey } from "../keys";
import { newOrg } from "../limits/helpers";
import { admin, adminJson, apiCall, tightTier } from "./helpers";

async function orgWithTraffic(perMinute: number, requests: number) {
	const orgId = newOrg();
	const key = `sk-guard-${crypto.randomUUID().replaceAll("-", "")}${"1".repeat(8)}`;
	if (env.KEYS === undefined) throw new Error("these tests need the KEYS binding");
	await seedKey(env.KEYS, key, { id: `key_${crypto.randomUUID().replaceAll("-", "")}`, org_id: orgId });
	const overrides = tightTier(orgId, perMinute);
	const statuses: number[] = [];
	const refusedIds: string[] = [];
	for (let i = 0; i < requests; i++) {
		const response = await apiCall(key, "/v1/models", overrides);
		statuses.push(response.status);
		if (response.status === 429) refusedIds.push(response.headers.get("request-id") ?? "");
		await response.text();
	}
	return { orgId, overrides, statuses, refusedIds };
}

describe("GET /_guard/api/orgs/:id", () => {
	it("shows the requests admitted and refused by reason per minute, the last refusal's request ID and the headroom left", async () => {
		const { orgId, overrides, statuses, refusedIds } = await orgWithTraffic(3, 5);
		expect(statuses).toEqual([200, 200, 200, 429, 429]);
		const { org } = await adminJson<{ org: OrgView }>(`/_guard/api/orgs/${orgId}?minutes=5&days=2`, 200, {}, overrides);
		expect(org.tier).toBe("admin_test");
		expect(org.keys).toEqual({ total: 1, active: 1, disabled: 0 });
		const minutes = org.history?.minutes;
		expect(minutes?.admitted).toHaveLength(5);
		expect(minutes?.step_seconds).toBe(60);
		expect(minutes?.admitted.reduce((a, b) => a + b, 0)).toBe(3);
		// The first refusal is the object's, the second the isolate's remembered rejection: both counted.
		expect(minutes?.refused.requests?.reduce((a, b) => a + b, 0)).toBe(2);
		expect(org.history?.days.admitted.reduce((a, b) => a + b, 0)).toBe(3);
		expect(org.recent).toEqual({ minutes: 5, admitted: 3, refused: { requests: 2 } });
		expect(org.last_refusal).toMatchObject({ request_id: refusedIds[1], reason: "requests" });
		expect(org.limits.find((limit) => limit.limit === "requests")).toMatchObject({ pool: "organization", per_minute: 3, remaining: 0 });
		expect(org.spend.map((spend) => [spend.period, spend.spent_usd, spend.budget_usd])).toEqual([
			["day", 0, null],
			["month", 0, null],
		]);
	});

	it("shows a message's claim outstanding while it is in flight, and none once it has settled", async () => {
		const orgId = newOrg();
		const key = `sk-guard-${crypto.randomUUID().replaceAll("-", "")}${"2".repeat(8)}`;
		if (env.KEYS === undefined) throw new Error("these tests need the KEYS binding");
		await seedKey(env.KEYS, key, { id: `key_${crypto.randomUUID().replaceAll("-", "")}`, org_id: orgId });
		const overrides = tightTier(orgId, 100);
		let release: () => void = () => undefined;
		const gate = new Promise<void>((resolve) => {
			release = resolve;
		});
		let arrived: () => void = () => undefined;
		const atOrigin = new Promise<void>((resolve) => {
			arrived = resolve;
		});
		const origin = {
			fetch: async (_input: RequestInfo | URL, init?: RequestInit) => {
				await new Response(init?.body ?? null).arrayBuffer();
				arrived();
				await gate;
				return Response.json({ type: "message", model: "m", content: [], usage: { input_tokens: 5, output_tokens: 7 } });
			},
		} as unknown as Fetcher;
		const body = JSON.stringify({ model: "m", max_tokens: 300, messages: [{ role: "user", content: "hi" }] });
		const pending = startGuard("/v1/messages", { method: "POST", headers: { "x-api-key": key, "content-type": "application/json", "content-length": String(body.length) }, body }, { ...overrides, ORIGIN: origin });
		const first = await Promise.race([atOrigin.then(() => "origin"), pending.then((r) => `answered ${r.response.status}`)]);
		expect(first).toBe("origin");
		const during = await adminJson<{ org: OrgView }>(`/_guard/api/orgs/${orgId}`, 200, {}, overrides);
		expect(during.org.claims).toMatchObject({ outstanding: 1, held: { requests: 1, input_tokens: Math.ceil(body.length / 4), output_tokens: 300 } });
		release();
		const answered = await pending;
		expect(answered.response.status).toBe(200);
		await answered.response.arrayBuffer();
		await answered.settled();
		const after = await adminJson<{ org: OrgView }>(`/_guard/api/orgs/${orgId}`, 200, {}, overrides);
		expect(after.org.claims).toEqual({ outstanding: 0, held: { requests: 0, input_tokens: 0, output_tokens: 0, usd: 0 }, settled: 1, settled_usd: 0 });
	});

	it("refuses history windows it does not keep, naming the parameter", async () => {
		for (const [query, message] of [
			["minutes=0", "minutes: must be a whole number from 1 to 1440"],
			["minutes=1441", "minutes: must be a whole number from 1 to 1440"],
			["minutes=ten", "minutes: must be a whole number from 1 to 1440"],
			["days=91", "days: must be a whole number from 1 to 90"],
		]) {
			const response = await admin(`/_guard/api/orgs/org_test?${query}`);
			expect(response.status, query).toBe(400);
			expect((await readEnvelope(response)).error.message).toContain(message);
		}
		expect((await admin("/_guard/api/orgs/has%20space")).status).toBe(404);
	});
});

describe("GET /_guard/api/orgs", () => {
	it("lists every organisation with a key or a tier, with its limits and its last hour", async () => {
		const { orgId, overrides } = await orgWithTraffic(3, 4);
		const { orgs, truncated } = await adminJson<{ orgs: OrgView[]; truncated: boolean }>("/_guard/api/orgs", 200, {}, overrides);
		expect(truncated).toBe(false);
		const ids = orgs.map((org) => org.id);
		expect(ids).toContain("org_test");
		expect(ids).toContain("org_tight");
		const mine = orgs.find((org) => org.id === orgId);
		expect(mine).toMatchObject({ tier: "admin_test", recent: { minutes: 60, admitted: 3, refused: { requests: 1 } } });
		expect(mine?.history).toBeUndefined();
	});
});

describe("GET /_guard/api/health", () => {
	it("shows this isolate's breakers, requests in flight and the configuration, with secrets as set or not", async () => {
		const secret = "origin-secret-value-9d2f";
		const body = await adminJson<{
			isolate: { breakers: { origin: string; state: string }[]; in_flight: { total: number; max_in_flight: number } };
			config: { routes: unknown[]; secrets: Record<string, boolean>; limiter_mode: string; bindings: Record<string, boolean> };
		}>("/_guard/api/health", 200, {}, { ORIGIN_TOKEN: secret });
		expect(body.isolate.breakers).toEqual([{ origin: "service:ORIGIN", state: "closed", recent: expect.any(Object), half_open_at: null }]);
		const recent = (body.isolate.breakers[0] as unknown as { recent: { requests: number; failures: number; failure_rate: number | null } }).recent;
		expect(recent.failures).toBe(0);
		expect(recent.failure_rate).toBe(recent.requests === 0 ? null : 0);
		expect(body.isolate.in_flight).toMatchObject({ total: 0, max_in_flight: 100 });
		expect(body.config.routes).toHaveLength(13);
		expect(body.config.limiter_mode).toBe("exact");
		expect(body.config.secrets).toEqual({ ORIGIN_TOKEN: true, ADMIN_TOKEN: true });
		expect(body.config.bindings).toMatchObject({ KEYS: true, USAGE: true, ASSETS: true });
		expect(JSON.stringify(body)).not.toContain(secret);
	});
});

describe("the console's page", () => {
	it("is served at /_guard/ with its scripts, uPlot included, under a content security policy of its own files", async () => {
		const page = await admin("/_guard/", { token: null });
		expect(page.status).toBe(200);
		expect(page.headers.get("content-type")).toContain("text/html");
		expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
		expect(page.headers.get("x-frame-options")).toBe("DENY");
		const html = await page.text();
		expect(html).toContain('<script src="vendor/uPlot.iife.min.js" defer></script>');
		const script = await admin("/_guard/vendor/uPlot.iife.min.js", { token: null });
		expect(script.status).toBe(200);
		expect(await script.text()).toContain("uPlot");
		expect((await admin("/_guard", { token: null, redirect: "manual" })).headers.get("location")).toBe("/_guard/");
		expect((await admin("/_guard/nothing.js", { token: null })).status).toBe(404);
		expect((await admin("/_guard/", { method: "POST", token: null })).status).toBe(405);
	});
});
