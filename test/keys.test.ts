import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { generateApiKey, hashApiKey } from "../src/keys/api-key";
import { TtlCache } from "../src/keys/key-cache";
import type { SinkRecord } from "./fixtures/sink-origin";
import { callGuardToSink, readEnvelope, sinkRecord, configProblem, MISCONFIGURED } from "./helpers";
import { seedKey } from "./keys";

const MESSAGES_ONLY = "sk-guard-MessagesOnly000000000000000000000000000";
const DISABLED = "sk-guard-Disabled0000000000000000000000000000000";
const WORKSPACE = "sk-guard-Workspace000000000000000000000000000000";
const KEYS = () => env.KEYS as KVNamespace;

beforeAll(async () => {
	await seedKey(KEYS(), MESSAGES_ONLY, { id: "key_msgs", org_id: "org_a", scopes: ["messages", "models"] });
	await seedKey(KEYS(), DISABLED, { id: "key_off", org_id: "org_a", status: "disabled" });
	await seedKey(KEYS(), WORKSPACE, { id: "key_ws", org_id: "org_b", workspace_id: "wrk_1" });
});

afterEach(() => {
	vi.restoreAllMocks();
});

const json = { "content-type": "application/json" };

async function expectError(response: Response, status: number, type: string, message: string) {
	expect(response.status).toBe(status);
	const body = await readEnvelope(response);
	expect(body.error).toEqual({ type, message });
	expect(body.request_id).toBe(response.headers.get("request-id"));
	expect(response.headers.get("x-should-retry")).toBe("false");
	await expect(sinkRecord(body.request_id)).rejects.toThrow("no record");
}

describe("API keys: happy paths", () => {
	it("admits a key in x-api-key and tells the origin who it is", async () => {
		const response = await callGuardToSink("/v1/models", { headers: { "x-api-key": WORKSPACE } });
		expect(response.status).toBe(200);
		const seen = ((await response.json()) as SinkRecord).headers;
		expect(seen["x-guard-org-id"]).toBe("org_b");
		expect(seen["x-guard-key-id"]).toBe("key_ws");
		expect(seen["x-guard-workspace-id"]).toBe("wrk_1");
	});

	it("admits a key given as authorization: Bearer", async () => {
		const response = await callGuardToSink("/v1/models", { headers: { "x-api-key": "", authorization: `Bearer ${MESSAGES_ONLY}` } });
		expect(response.status).toBe(200);
		expect(((await response.json()) as SinkRecord).headers["x-guard-key-id"]).toBe("key_msgs");
	});

	it("uses the identity header names the configuration gives", async () => {
		const response = await callGuardToSink(
			"/v1/models",
			{ headers: { "x-api-key": WORKSPACE } },
			{ IDENTITY_HEADERS: { org: "x-tenant", key: "x-tenant-key" } },
		);
		const seen = ((await response.json()) as SinkRecord).headers;
		expect(seen["x-tenant"]).toBe("org_b");
		expect(seen["x-tenant-key"]).toBe("key_ws");
		expect(seen["x-guard-workspace-id"]).toBe("wrk_1");
		expect(seen["x-guard-org-id"]).toBeUndefined();
	});
});

describe("API keys: errors, in the SPEC's order", () => {
	it("answers 401 when no key is given", async () => {
		const response = await callGuardToSink("/v1/models", { headers: { "x-api-key": "" } });
		await expectError(response, 401, "authentication_error", "x-api-key header is required");
	});

	it("answers 401 to an unknown key", async () => {
		const response = await callGuardToSink("/v1/models", { headers: { "x-api-key": generateApiKey() } });
		await expectError(response, 401, "authentication_error", "invalid x-api-key");
	});

	it("answers 401 to a disabled key", async () => {
		const response = await callGuardToSink("/v1/models", { headers: { "x-api-key": DISABLED } });
		await expectError(response, 401, "authentication_error", "invalid x-api-key");
	});

	it("answers 403 naming the missing scope", async () => {
		const response = await callGuardToSink("/v1/files", { headers: { "x-api-key": MESSAGES_ONLY } });
		await expectError(response, 403, "permission_error", 'This API key does not have the "files" scope, which GET /v1/files requires.');
		// The key is known and active: the refusal says whose it is, as every later answer does.
		expect(response.headers.get("anthropic-organization-id")).toBe("org_a");
	});

	it("answers 400 when anthropic-version is missing", async () => {
		const response = await callGuardToSink("/v1/models", { headers: { "anthropic-version": "" } });
		await expectError(response, 400, "invalid_request_error", "anthropic-version: header is required");
	});

	it("answers 400 when a JSON route's body is not declared as JSON", async () => {
		const response = await callGuardToSink("/v1/messages", { method: "POST", body: "{}", headers: { "content-type": "text/plain" } });
		await expectError(response, 400, "invalid_request_error", 'content-type: POST /v1/messages takes application/json, got "text/plain"');
	});

	it("checks the key before the version, and the scope before the version", async () => {
		const noKey = await callGuardToSink("/v1/files", { headers: { "x-api-key": "", "anthropic-version": "" } });
		expect(noKey.status).toBe(401);
		const noScope = await callGuardToSink("/v1/files", { headers: { "x-api-key": MESSAGES_ONLY, "anthropic-version": "" } });
		expect(noScope.status).toBe(403);
	});

	it("checks the key before the body cap", async () => {
		const response = await callGuardToSink("/v1/messages", {
			method: "POST",
			body: "{}",
			headers: { ...json, "x-api-key": "", "content-length": "99999999999" },
		});
		expect(response.status).toBe(401);
	});
});

describe("API keys: security", () => {
	it("removes identity headers a client sends itself", async () => {
		const spoof = { "x-guard-org-id": "org_victim", "x-guard-key-id": "key_victim", "x-guard-workspace-id": "wrk_victim" };
		const response = await callGuardToSink("/v1/models", { headers: { "x-api-key": MESSAGES_ONLY, ...spoof } });
		const seen = ((await response.json()) as SinkRecord).headers;
		expect(seen["x-guard-org-id"]).toBe("org_a");
		expect(seen["x-guard-key-id"]).toBe("key_msgs");
		expect(seen["x-guard-workspace-id"]).toBeUndefined();
	});

	it("removes identity headers on a route without auth too", async () => {
		const routes = [{ methods: ["GET"], path: "/v1/models", max_body_bytes: 0, auth: false }];
		const response = await callGuardToSink("/v1/models", { headers: { "x-guard-org-id": "org_victim" } }, { ROUTES: routes });
		expect(((await response.json()) as SinkRecord).headers["x-guard-org-id"]).toBeUndefined();
	});

	it("never forwards the key to the origin unless the route says so", async () => {
		const seen = ((await (await callGuardToSink("/v1/models", { headers: { "x-api-key": MESSAGES_ONLY } })).json()) as SinkRecord)
			.headers;
		expect(seen["x-api-key"]).toBeUndefined();
		expect(seen.authorization).toBeUndefined();
		const routes = [{ methods: ["GET"], path: "/v1/models", max_body_bytes: 0, group: "models", forward_api_key: true }];
		const forwarded = await callGuardToSink("/v1/models", { headers: { "x-api-key": MESSAGES_ONLY } }, { ROUTES: routes });
		expect(((await forwarded.json()) as SinkRecord).headers["x-api-key"]).toBe(MESSAGES_ONLY);
	});

	it("never puts a key in a log line or a response, admitted or refused", async () => {
		const logged: unknown[][] = [];
		for (const method of ["log", "error", "warn", "info", "debug"] as const) {
			vi.spyOn(console, method).mockImplementation((...args: unknown[]) => void logged.push(args));
		}
		const unknown = generateApiKey();
		const texts: string[] = [];
		for (const key of [MESSAGES_ONLY, DISABLED, unknown]) {
			for (const path of ["/v1/models", "/v1/files", "/v1/nowhere"]) {
				const response = await callGuardToSink(path, { headers: { "x-api-key": key } });
				texts.push(JSON.stringify([...response.headers]), await response.text());
			}
		}
		const everything = JSON.stringify(logged) + texts.join("\n");
		expect(logged.length).toBeGreaterThan(0);
		for (const key of [MESSAGES_ONLY, DISABLED, unknown]) {
			expect(everything).not.toContain(key);
			expect(everything).not.toContain(key.slice(9, 30));
		}
		expect(everything).toContain("key_msgs");
	});

	it("stores only the key's SHA-256", async () => {
		const stored = await KEYS().list({ prefix: "" });
		const values = await Promise.all(stored.keys.map(({ name }) => KEYS().get(name)));
		const dump = JSON.stringify(stored.keys) + values.join("\n");
		expect(dump).not.toContain(MESSAGES_ONLY);
		expect(dump).toContain(await hashApiKey(MESSAGES_ONLY));
	});
});

describe("API keys: speed and freshness", () => {
	function countingKv(inner: KVNamespace) {
		let reads = 0;
		const kv = new Proxy(inner, {
			get(target, property) {
				const value = Reflect.get(target, property, target);
				if (property === "get") {
					return (...args: Parameters<KVNamespace["get"]>) => {
						reads++;
						return (value as KVNamespace["get"]).apply(target, args);
					};
				}
				return typeof value === "function" ? value.bind(target) : value;
			},
		});
		return { kv, reads: () => reads };
	}

	it("reads KV once for a hot key, and once for a repeated unknown key", async () => {
		const counted = countingKv(KEYS());
		for (let i = 0; i < 10; i++) {
			const response = await callGuardToSink("/v1/models", { headers: { "x-api-key": MESSAGES_ONLY } }, { KEYS: counted.kv });
			expect(response.status).toBe(200);
		}
		expect(counted.reads()).toBe(1);
		const unknown = generateApiKey();
		for (let i = 0; i < 5; i++) {
			const response = await callGuardToSink("/v1/models", { headers: { "x-api-key": unknown } }, { KEYS: counted.kv });
			expect(response.status).toBe(401);
		}
		expect(counted.reads()).toBe(2);
	});

	it("stops a disabled key at once when caching is off", async () => {
		const key = generateApiKey();
		const record = await seedKey(KEYS(), key, { id: "key_soon_off", org_id: "org_c" });
		const overrides = { KEY_CACHE_TTL_SECONDS: 0 };
		expect((await callGuardToSink("/v1/models", { headers: { "x-api-key": key } }, overrides)).status).toBe(200);
		await seedKey(KEYS(), key, { ...record, status: "disabled" });
		expect((await callGuardToSink("/v1/models", { headers: { "x-api-key": key } }, overrides)).status).toBe(401);
	});

	it("keeps a lookup, found or not, for exactly the configured time", () => {
		let now = 1_000;
		const cache = new TtlCache<string | null>(30_000, 100, () => now);
		cache.set("a", "record");
		cache.set("b", null);
		now += 29_999;
		expect(cache.get("a")).toEqual({ value: "record" });
		expect(cache.get("b")).toEqual({ value: null });
		now += 1;
		expect(cache.get("a")).toBeUndefined();
		expect(cache.get("b")).toBeUndefined();
	});

	it("holds a bounded number of lookups, dropping the oldest", () => {
		const cache = new TtlCache<number>(60_000, 3, () => 0);
		for (const [i, key] of ["a", "b", "c", "d"].entries()) cache.set(key, i);
		expect(cache.get("a")).toBeUndefined();
		expect(cache.get("d")).toEqual({ value: 3 });
	});

	it("refuses a cache time over 60 s", async () => {
		const { response, envelope, problem } = await configProblem("/v1/models", { KEY_CACHE_TTL_SECONDS: 61 });
		expect(response.status).toBe(500);
		expect(envelope.error.message).toBe(MISCONFIGURED);
		expect(problem).toContain("KEY_CACHE_TTL_SECONDS: must be a number of seconds from 0 to 60, got 61");
	});
});
