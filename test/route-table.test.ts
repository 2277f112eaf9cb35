import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { parseRouteTable } from "../src/config/route-table";
import { callGuard, configProblem, MISCONFIGURED } from "./helpers";

// Validation of the table itself is tested in Node in test/pure/route-table.test.ts.
const good = { methods: ["POST"], path: "/v1/messages", max_body_bytes: 10, group: "messages" };

describe("the default route table in wrangler.toml", () => {
	it("is valid and has the Anthropic API surface with exact byte caps", () => {
		const routes = parseRouteTable(env.ROUTES);
		const caps = Object.fromEntries(routes.map((route) => [`${route.methods.join("|")} ${route.path}`, route.maxBodyBytes]));
		expect(caps).toEqual({
			"POST /v1/messages": 33_554_432,
			"POST /v1/messages/count_tokens": 33_554_432,
			"POST /v1/messages/batches": 268_435_456,
			"GET /v1/messages/batches": 0,
			"GET|DELETE /v1/messages/batches/:id": 0,
			"POST /v1/messages/batches/:id/cancel": 0,
			"GET /v1/messages/batches/:id/results": 0,
			"POST /v1/files": 524_288_000,
			"GET /v1/files": 0,
			"GET|DELETE /v1/files/:id": 0,
			"GET /v1/files/:id/content": 0,
			"GET /v1/models": 0,
			"GET /v1/models/:id": 0,
		});
	});
});

describe("an invalid configuration at run time", () => {
	it("answers every request 500 api_error naming the bad field", async () => {
		const routes = [{ ...good, max_body_bytes: "32MB" }];
		for (const path of ["/v1/messages", "/anything"]) {
			const { response, envelope: body, problem } = await configProblem(path, { ROUTES: routes }, { method: "POST", body: "{}" });
			expect(response.status).toBe(500);
			expect(body.error.type).toBe("api_error");
			expect(body.error.message).toBe(MISCONFIGURED);
			// Logged once, when the configuration is first seen.
			if (path === "/v1/messages") expect(problem).toContain('ROUTES[0].max_body_bytes: must be a whole number of bytes (0 or more), got "32MB"');
			expect(body.request_id).toBe(response.headers.get("request-id"));
			expect(response.headers.get("x-should-retry")).toBe("true");
		}
	});

	it("recovers once the configuration is valid again", async () => {
		const broken = await callGuard("/v1/models", {}, { ROUTES: [{ ...good, methods: "GET" }] });
		expect(broken.status).toBe(500);
		const fixed = await callGuard("/v1/models");
		expect(fixed.status).toBe(200);
	});
});
