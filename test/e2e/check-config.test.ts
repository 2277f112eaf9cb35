import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(__dirname, "../..");

function checkConfig(toml: string): { status: number | null; output: string } {
	const dir = mkdtempSync(join(tmpdir(), "edge-guard-config-"));
	const path = join(dir, "wrangler.toml");
	writeFileSync(path, toml);
	const run = spawnSync(process.execPath, ["scripts/check-config.mjs", "--config", path], {
		cwd: ROOT,
		encoding: "utf8",
		env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
	});
	return { status: run.status, output: run.stdout + run.stderr };
}

const base = readFileSync(resolve(ROOT, "wrangler.toml"), "utf8");

describe("npm run check-config", () => {
	it("passes the repository's own wrangler.toml", () => {
		const { status, output } = checkConfig(base);
		expect(output).toContain("✔ local (top level): 13 routes");
		expect(status).toBe(0);
	});

	it("exits non-zero naming the bad field when a cap is not a number", () => {
		const broken = base.replace("max_body_bytes = 524288000 # 500 MiB", 'max_body_bytes = "500MB"');
		const { status, output } = checkConfig(broken);
		expect(status).toBe(1);
		expect(output).toContain('ROUTES[7].max_body_bytes: must be a whole number of bytes (0 or more), got "500MB"');
	});

	it("exits non-zero for a misspelt field and for a deployed environment with no origin", () => {
		const typo = checkConfig(base.replace('path = "/v1/models"', 'pth = "/v1/models"'));
		expect(typo.status).toBe(1);
		expect(typo.output).toContain("ROUTES[11].pth: unknown field");
		const envWithoutOrigin = `${base}\n[env.lab]\n[env.lab.vars]\nROUTES = '[{"methods":["GET"],"path":"/v1/models","max_body_bytes":0,"auth":false}]'\n`;
		const lab = checkConfig(envWithoutOrigin);
		expect(lab.status).toBe(1);
		expect(lab.output).toContain("env.lab: ORIGIN_URL: ROUTES[0] has no origin of its own");
		const keyless = checkConfig(`${envWithoutOrigin.replace(',"auth":false', ',"group":"models"')}ORIGIN_URL = "https://api.example.com"\n`);
		expect(keyless.status).toBe(1);
		expect(keyless.output).toContain("env.lab: KEYS: ROUTES[0] needs API keys, so bind a KV namespace named KEYS");
	});

	it("checks a route's origins list: passes a good one, names a bad entry and a binding that is not bound", () => {
		const models = 'name = "models.list"\nmethods = ["GET"]\npath = "/v1/models"\n';
		expect(base).toContain(models);
		const withOrigins = (list: string) => base.replace(models, `${models}origins = ${list}\n`);
		const good = checkConfig(withOrigins('[{ binding = "ORIGIN", priority = 1 }, { url = "https://b.example.com", priority = 2, weight = 3 }]'));
		expect(good.output).toContain("✔ local (top level): 13 routes");
		expect(good.status).toBe(0);
		const weightless = checkConfig(withOrigins('[{ binding = "ORIGIN" }, { url = "https://b.example.com", weight = 0 }]'));
		expect(weightless.status).toBe(1);
		expect(weightless.output).toContain("ROUTES[11].origins[1].weight: must be a whole number from 1 to 1000, got 0");
		const unbound = checkConfig(withOrigins('[{ binding = "ORIGIN" }, { binding = "ORIGIN2" }]'));
		expect(unbound.status).toBe(1);
		expect(unbound.output).toContain("ROUTES[11].origins[1].binding: no service binding named ORIGIN2 is bound; add it to [[services]]");
	});

	it("warns about every cap above the zone plan's body limit, and names a bad plan", () => {
		const pro = checkConfig(base.replace('ZONE_PLAN = "enterprise"', 'ZONE_PLAN = "pro"'));
		expect(pro.status).toBe(0);
		expect(pro.output).toContain("route batches.create: max_body_bytes 268435456 is above the pro plan's limit of 104857600 bytes");
		expect(pro.output).toContain("route files.upload: max_body_bytes 524288000 is above the pro plan's limit of 104857600 bytes");
		expect(pro.output).not.toContain("route messages.create: max_body_bytes");
		const enterprise = checkConfig(base);
		expect(enterprise.output).not.toContain("⚠");
		const raised = checkConfig(base.replace('ZONE_PLAN = "enterprise"', 'ZONE_PLAN = "business"\nZONE_BODY_LIMIT_BYTES = 300000000'));
		expect(raised.output).toContain("route files.upload: max_body_bytes 524288000 is above ZONE_BODY_LIMIT_BYTES of 300000000 bytes");
		expect(raised.output).not.toContain("route batches.create");
		const bad = checkConfig(base.replace('ZONE_PLAN = "enterprise"', 'ZONE_PLAN = "gold"'));
		expect(bad.status).toBe(1);
		expect(bad.output).toContain('ZONE_PLAN: must be one of free, pro, business, enterprise, got "gold"');
	});
});
