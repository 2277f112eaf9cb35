import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config/config-error";
import { parseGuardConfig } from "../../src/config/guard-config";
import { parseRouteTable } from "../../src/config/route-table";

const good = { methods: ["POST"], path: "/v1/messages", max_body_bytes: 10, group: "messages" };

function problem(raw: unknown): string {
	try {
		parseRouteTable(raw);
	} catch (error) {
		expect(error).toBeInstanceOf(ConfigError);
		return (error as Error).message;
	}
	throw new Error("the table was accepted");
}

describe("route table validation", () => {
	it("accepts the table as a JSON string too", () => {
		expect(parseRouteTable(JSON.stringify([good]))[0]?.maxBodyBytes).toBe(10);
	});

	it.each([
		[undefined, "ROUTES: the route table is missing"],
		["[", "ROUTES: is a string but not valid JSON"],
		[[], "ROUTES: must be a non-empty array"],
		[[42], "ROUTES[0]: must be a table"],
		[[good, { ...good, path: "/v1/files", max_body_bytes: "32MB" }], 'ROUTES[1].max_body_bytes: must be a whole number of bytes (0 or more), got "32MB"'],
		[[{ ...good, max_body_bytes: -1 }], "ROUTES[0].max_body_bytes: must be a whole number"],
		[[{ ...good, max_body_bytes: 1.5 }], "ROUTES[0].max_body_bytes: must be a whole number"],
		[[{ ...good, max_body_byte: 5 }], "ROUTES[0].max_body_byte: unknown field"],
		[[{ ...good, methods: [] }], "ROUTES[0].methods: must be a non-empty array"],
		[[{ ...good, methods: ["post"] }], 'ROUTES[0].methods: "post" is not one of'],
		[[{ ...good, methods: ["GET", "GET"] }], "ROUTES[0].methods: GET is listed twice"],
		[[{ ...good, path: "v1/messages" }], 'ROUTES[0].path: must be a path starting with "/"'],
		[[{ ...good, path: "/v1/messages?x=1" }], 'ROUTES[0].path: segment "messages?x=1"'],
		[[{ ...good, path: "/v1//messages" }], 'ROUTES[0].path: segment ""'],
		[[{ ...good, origin: "ftp://x" }], "ROUTES[0].origin: must be an absolute http(s) URL"],
		[[{ ...good, origin: "https://x/?q=1" }], "ROUTES[0].origin: must be an absolute http(s) URL"],
		[[{ ...good, group: "Messages" }], "ROUTES[0].group: must be a lower-case name"],
		[[{ ...good, rewrite_urls: "results_url" }], "ROUTES[0].rewrite_urls: must be an array of JSON field names"],
		[[good, { ...good, name: "other" }], "ROUTES[1].methods: POST /v1/messages is already routed by ROUTES[0]"],
		[[{ ...good, name: "a" }, { ...good, path: "/v1/x", name: "a" }], 'ROUTES[1].name: "a" is already used by ROUTES[0]'],
	])("rejects %j with a message naming the field", (raw, expected) => {
		expect(problem(raw)).toContain(expected);
	});

	it("requires an origin for every route when no ORIGIN binding is bound", () => {
		expect(() => parseGuardConfig({ ROUTES: [good], ORIGIN_URL: "", hasOriginBinding: false, hasKeysBinding: true })).toThrow(
			"ORIGIN_URL: ROUTES[0] has no origin of its own, so set ORIGIN_URL or bind a service named ORIGIN",
		);
		expect(() => parseGuardConfig({ ROUTES: [good], ORIGIN_URL: "not a url", hasOriginBinding: false, hasKeysBinding: true })).toThrow(
			'ORIGIN_URL: must be an absolute http(s) URL without credentials, query or fragment, got "not a url"',
		);
		expect(parseGuardConfig({ ROUTES: [good], ORIGIN_URL: "https://api.example.com/", hasOriginBinding: false, hasKeysBinding: true }).originUrl).toBe(
			"https://api.example.com",
		);
	});
});
