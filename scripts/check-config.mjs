#!/usr/bin/env node
// `npm run check-config [-- --config wrangler.toml] [--env NAME]`: validates the guard's
// configuration exactly as the Worker does, for the local default and every [env.*], and exits
// non-zero with the Worker's own message when any is invalid, so a broken table never deploys.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { experimental_readRawConfig, unstable_readConfig } from "wrangler";
import { loadTs } from "./lib/load-ts.mjs";

process.env.WRANGLER_SEND_METRICS = "false";

const { values } = parseArgs({ options: { config: { type: "string", default: "wrangler.toml" }, env: { type: "string" } } });
const configPath = resolve(values.config);
if (!existsSync(configPath)) {
	console.error(`check-config: no such file ${configPath}`);
	process.exit(2);
}

const { parseGuardConfig, parseZoneLimit, capsOverZoneLimit, parseTierConfig } = await loadTs("scripts/lib/config-checks.ts");
const { rawConfig } = experimental_readRawConfig({ config: configPath });
const environments = values.env !== undefined ? [values.env] : [undefined, ...Object.keys(rawConfig.env ?? {})];

let failures = 0;
for (const environment of environments) {
	const label = environment === undefined ? "local (top level)" : `env.${environment}`;
	let config;
	try {
		config = unstable_readConfig({ config: configPath, env: environment }, { hideWarnings: true });
	} catch (error) {
		console.error(`✘ ${label}: wrangler could not read the file: ${error instanceof Error ? error.message : error}`);
		failures++;
		continue;
	}
	const vars = config.vars ?? {};
	const hasOriginBinding = (config.services ?? []).some((service) => service.binding === "ORIGIN");
	const serviceBindings = (config.services ?? []).map((service) => service.binding).join(",");
	const hasKeysBinding = (config.kv_namespaces ?? []).some((namespace) => namespace.binding === "KEYS");
	try {
		// Secrets live in Cloudflare, not in the file: assume the required ones are set, and say which.
		const required = Array.isArray(vars.REQUIRED_SECRETS) ? vars.REQUIRED_SECRETS : [];
		const guard = parseGuardConfig({ ...vars, hasOriginBinding, hasKeysBinding, serviceBindings, presentSecrets: required.join(",") });
		// A deployed guard must not build its links (rewrite_urls) from the Host header a client sends.
		if (environment !== undefined && guard.publicUrl === undefined) {
			throw new Error("PUBLIC_URL: a deployed environment needs the guard's public base URL (such as https://api.example.com), so rewrite_urls never follows a client's Host header");
		}
		const zone = parseZoneLimit(vars.ZONE_PLAN, vars.ZONE_BODY_LIMIT_BYTES);
		if (vars.TIERS !== undefined) parseTierConfig(vars);
		const origin = hasOriginBinding ? "service binding ORIGIN" : guard.originUrl ?? "per-route origins";
		const plan = zone === undefined ? "no ZONE_PLAN set" : `zone body limit ${zone.bytes} bytes`;
		const secrets = required.length === 0 ? "" : `; needs secrets ${required.join(", ")} (wrangler secret put)`;
		console.log(`✔ ${label}: ${guard.routes.length} routes, origin ${origin}, ${plan}${secrets}`);
		for (const warning of zone === undefined ? [] : capsOverZoneLimit(guard.routes, zone)) console.warn(`  ⚠ ${label}: ${warning}`);
	} catch (error) {
		console.error(`✘ ${label}: ${error instanceof Error ? error.message : error}`);
		failures++;
	}
}
process.exit(failures === 0 ? 0 : 1);
