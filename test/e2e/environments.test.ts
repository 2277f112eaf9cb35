import { resolve } from "node:path";
import { unstable_readConfig } from "wrangler";
import { describe, expect, it } from "vitest";

const CONFIG = resolve(__dirname, "../../wrangler.toml");
const read = (env?: string) => unstable_readConfig({ config: CONFIG, env }, { hideWarnings: true });
const LOCAL_MARKERS = ["sk-demo-", "x-demo-fault", "edge-guard-demo-origin", "org_demo", "org_tight", "localhost", "127.0.0.1", "edge-guard-keys-local"];

describe.each(["staging", "production"])("the %s environment", (name) => {
	const config = read(name);

	it("carries nothing local: no demo origin, demo key, demo organisation, fault or local address", () => {
		const text = JSON.stringify({ vars: config.vars, services: config.services, kv: config.kv_namespaces, routes: config.routes });
		for (const marker of LOCAL_MARKERS) expect(text).not.toContain(marker);
		expect(config.services ?? []).toEqual([]);
	});

	it("has its own KV namespace and usage Durable Object, an https origin, and requires the origin secret", () => {
		expect(config.kv_namespaces).toEqual([expect.objectContaining({ binding: "KEYS" })]);
		expect(config.kv_namespaces[0]?.id).not.toBe(read().kv_namespaces[0]?.id);
		expect(config.durable_objects.bindings).toEqual([expect.objectContaining({ name: "USAGE", class_name: "UsageObject" })]);
		expect(String(config.vars.ORIGIN_URL)).toMatch(/^https:\/\//);
		expect(config.vars.REQUIRED_SECRETS).toEqual(["ORIGIN_TOKEN"]);
		// The secret's value never lives in the file.
		expect(config.vars).not.toHaveProperty("ORIGIN_TOKEN");
		expect(config.observability?.enabled).toBe(true);
	});

	it("routes exactly as the local table does (wrangler does not inherit [vars], so the copy must not drift)", () => {
		expect(config.vars.ROUTES).toEqual(read().vars.ROUTES);
	});
});
