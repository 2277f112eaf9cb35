import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config/config-error";
import { parseGuardConfig } from "../../src/config/guard-config";
import { parseRouteTable } from "../../src/config/route-table";

const base = { name: "messages.create", methods: ["POST"], path: "/v1/messages", max_body_bytes: 10, group: "messages" };

function problem(route: Record<string, unknown>): string {
	try {
		parseRouteTable([{ ...base, ...route }]);
	} catch (error) {
		expect(error).toBeInstanceOf(ConfigError);
		return (error as Error).message;
	}
	throw new Error("the table was accepted");
}

describe("a route's origins list", () => {
	it("reads URLs and bindings with their priority and weight, and the retry defaults", () => {
		const [route] = parseRouteTable([
			{ ...base, origins: [{ url: "https://a.example.com/", priority: 1, weight: 3 }, { binding: "ORIGIN2", priority: 2 }] },
		]);
		expect(route?.origins).toEqual([
			{ url: "https://a.example.com", binding: undefined, priority: 1, weight: 3, name: "https://a.example.com" },
			{ url: undefined, binding: "ORIGIN2", priority: 2, weight: 1, name: "service:ORIGIN2" },
		]);
		expect(route?.retry).toEqual({ maxAttempts: 2, replayMaxBytes: 1024 * 1024, connectTimeoutMs: 0, retryStatuses: [] });
		expect(route?.origin).toBeUndefined();
	});

	it("keeps a route with one origin exactly as before: no list, no retry", () => {
		const [route] = parseRouteTable([{ ...base, origin: "https://a.example.com" }]);
		expect(route?.origin).toBe("https://a.example.com");
		expect(route?.origins).toBeUndefined();
		expect(route?.retry).toBeUndefined();
	});

	it("reads the retry fields", () => {
		const [route] = parseRouteTable([
			{ ...base, origins: [{ url: "https://a.example.com" }], max_attempts: 3, replay_max_bytes: 4096, connect_timeout_seconds: 2.5, retry_statuses: [502] },
		]);
		expect(route?.retry).toEqual({ maxAttempts: 3, replayMaxBytes: 4096, connectTimeoutMs: 2500, retryStatuses: [502] });
	});

	it("names the bad entry and field", () => {
		expect(problem({ origins: [] })).toContain("ROUTES[0].origins: must be a non-empty array");
		expect(problem({ origins: [{ url: "https://a.example.com", binding: "ORIGIN2" }] })).toContain("ROUTES[0].origins[0]: must have exactly one of url");
		expect(problem({ origins: [{ priority: 1 }] })).toContain("ROUTES[0].origins[0]: must have exactly one of url");
		expect(problem({ origins: [{ url: "https://a.example.com" }, { url: "ftp://b.example.com" }] })).toContain("ROUTES[0].origins[1].url: must be an absolute http(s) URL");
		expect(problem({ origins: [{ url: "https://user:pw@a.example.com" }] })).toContain("ROUTES[0].origins[0].url: must not carry credentials");
		expect(problem({ origins: [{ binding: "origin2" }] })).toContain("ROUTES[0].origins[0].binding: must be a service binding's name");
		expect(problem({ origins: [{ url: "https://a.example.com", weight: 0 }] })).toContain("ROUTES[0].origins[0].weight: must be a whole number from 1 to 1000");
		expect(problem({ origins: [{ url: "https://a.example.com", priority: 1.5 }] })).toContain("ROUTES[0].origins[0].priority: must be a whole number");
		expect(problem({ origins: [{ url: "https://a.example.com", wieght: 2 }] })).toContain("ROUTES[0].origins[0].wieght: unknown field");
		expect(problem({ origins: [{ url: "https://a.example.com" }, { url: "https://a.example.com/" }] })).toContain("ROUTES[0].origins[1]: https://a.example.com is already origins[0]");
		expect(problem({ origin: "https://a.example.com", origins: [{ url: "https://b.example.com" }] })).toContain("ROUTES[0].origins: cannot be set with origin");
		expect(problem({ origins: [{ url: "https://a.example.com" }], max_attempts: 0 })).toContain("ROUTES[0].max_attempts: must be a whole number from 1 to 5");
		expect(problem({ origins: [{ url: "https://a.example.com" }], retry_statuses: [500, 429] })).toContain("ROUTES[0].retry_statuses[1]: must be a whole number from 500 to 599");
		expect(problem({ origins: [{ url: "https://a.example.com" }], replay_max_bytes: 17 * 1024 * 1024 })).toContain("ROUTES[0].replay_max_bytes");
	});

	it("refuses retry fields on a route without a list, where they would do nothing", () => {
		expect(problem({ origin: "https://a.example.com", max_attempts: 3 })).toContain("ROUTES[0].max_attempts: applies only to a route with an origins list");
		expect(problem({ connect_timeout_seconds: 1 })).toContain("ROUTES[0].connect_timeout_seconds: applies only to a route with an origins list");
	});

	it("refuses a binding that is not bound, and lets a route with a list do without ORIGIN_URL", () => {
		const raw = { ROUTES: [{ ...base, auth: false, group: undefined, origins: [{ binding: "ORIGIN2" }] }], hasOriginBinding: false, hasKeysBinding: false };
		expect(() => parseGuardConfig({ ...raw, serviceBindings: "ORIGIN" })).toThrow("ROUTES[0].origins[0].binding: no service binding named ORIGIN2 is bound");
		expect(parseGuardConfig({ ...raw, serviceBindings: "ORIGIN2" }).routes[0]?.origins?.[0]?.name).toBe("service:ORIGIN2");
	});
});
