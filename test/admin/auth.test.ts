import { describe, expect, it, vi } from "vitest";
import { configProblem, readEnvelope } from "../helpers";
import { ADMIN_TOKEN, admin } from "./helpers";

describe("the admin API's token", () => {
	it("answers 401 authentication_error in the envelope when no token is sent", async () => {
		const response = await admin("/_guard/api/health", { token: null });
		expect(response.status).toBe(401);
		const envelope = await readEnvelope(response);
		expect(envelope.error).toEqual({ type: "authentication_error", message: "The admin API needs the header authorization: Bearer <ADMIN_TOKEN>." });
		expect(envelope.request_id).toBe(response.headers.get("request-id"));
	});

	it("answers 401 to a wrong token, of the same length or another", async () => {
		for (const token of [`${ADMIN_TOKEN.slice(0, -1)}x`, "short", `${ADMIN_TOKEN}${ADMIN_TOKEN}`]) {
			const response = await admin("/_guard/api/health", { token });
			expect(response.status).toBe(401);
			expect((await readEnvelope(response)).error).toEqual({ type: "authentication_error", message: "invalid admin token" });
		}
	});

	it("takes the right token, and no API key instead of it", async () => {
		expect((await admin("/_guard/api/health")).status).toBe(200);
		expect((await admin("/_guard/api/health", { token: null, headers: { "x-api-key": ADMIN_TOKEN } })).status).toBe(401);
	});

	it("asks for the token on every endpoint, and on unknown ones before saying they do not exist", async () => {
		for (const [method, path] of [
			["GET", "/_guard/api/orgs"],
			["GET", "/_guard/api/orgs/org_test"],
			["GET", "/_guard/api/keys"],
			["POST", "/_guard/api/keys"],
			["PATCH", "/_guard/api/keys/key_test_all"],
			["DELETE", "/_guard/api/keys/key_test_all"],
			["GET", "/_guard/api/health"],
			["GET", "/_guard/api/nothing"],
		] as const) {
			const response = await admin(path, { method, token: null });
			expect(response.status, `${method} ${path}`).toBe(401);
		}
		expect((await admin("/_guard/api/nothing")).status).toBe(404);
	});

	it("is off without ADMIN_TOKEN: the whole /_guard prefix answers 404, the page included", async () => {
		for (const path of ["/_guard/api/health", "/_guard/", "/_guard/console.js", "/_guard"]) {
			const response = await admin(path, {}, { ADMIN_TOKEN: undefined });
			expect(response.status, path).toBe(404);
			expect((await readEnvelope(response)).error.type).toBe("not_found_error");
		}
		const empty = await admin("/_guard/api/health", {}, { ADMIN_TOKEN: "" });
		expect(empty.status).toBe(404);
	});

	it("refuses a cross-origin preflight, so no other page can call it", async () => {
		const response = await admin("/_guard/api/keys", {
			method: "OPTIONS",
			token: null,
			headers: { origin: "https://evil.example", "access-control-request-method": "PATCH", "access-control-request-headers": "authorization" },
		});
		expect(response.status).toBe(401);
		expect(response.headers.get("access-control-allow-origin")).toBeNull();
		expect(response.headers.get("access-control-allow-headers")).toBeNull();
	});

	it("is never shed, charged or forwarded, and logs its line without the token", async () => {
		const spy = vi.spyOn(console, "log");
		try {
			const wrong = await admin("/_guard/api/health", { token: "wrong-token-value" });
			const right = await admin("/_guard/api/health", {}, { OVERLOAD: { max_in_flight: 1 } });
			expect(wrong.status).toBe(401);
			expect(right.status).toBe(200);
			expect([...right.headers.keys()].filter((name) => name.startsWith("anthropic-ratelimit"))).toEqual([]);
			const lines = spy.mock.calls.map(([line]) => line as { route?: string; decisions?: Record<string, unknown> });
			const adminLines = lines.filter((line) => typeof line?.route === "string" && line.route.startsWith("admin"));
			expect(adminLines.map((line) => line.decisions?.admin_auth)).toEqual([{ outcome: "wrong-token" }, { outcome: "admitted" }]);
			for (const line of adminLines) expect(line.decisions).not.toHaveProperty("shed");
			const printed = JSON.stringify(spy.mock.calls);
			expect(printed).not.toContain(ADMIN_TOKEN);
			expect(printed).not.toContain("wrong-token-value");
		} finally {
			spy.mockRestore();
		}
	});
});

describe("the /_guard prefix", () => {
	it("cannot be taken by a route: the table is refused naming the field", async () => {
		const routes = [
			{ methods: ["GET"], path: "/v1/models", max_body_bytes: 0, group: "models" },
			{ methods: ["GET"], path: "/_guard/api/mine", max_body_bytes: 0, group: "models" },
		];
		const { response, problem } = await configProblem("/v1/models", { ROUTES: routes });
		expect(response.status).toBe(500);
		expect(problem).toContain("ROUTES[1].path: /_guard and every path under it belong to the guard's operator console; choose another path");
	});
});
