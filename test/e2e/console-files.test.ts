import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { unstable_readConfig } from "wrangler";
// @ts-expect-error: a plain ES module shared with the scripts; its JSDoc types are not checked here.
import { VENDORED } from "../../scripts/vendor-uplot.mjs";

const ROOT = resolve(__dirname, "../..");

describe("the console's static files", () => {
	it("vendor uPlot byte for byte as node_modules/uplot ships it, after one line for Biome", () => {
		const { version } = JSON.parse(readFileSync(resolve(ROOT, "node_modules/uplot/package.json"), "utf8")) as { version: string };
		for (const file of VENDORED as { from: string; to: string; header: (version: string) => string }[]) {
			const vendored = readFileSync(resolve(ROOT, "public/_guard/vendor", file.to), "utf8");
			const shipped = readFileSync(resolve(ROOT, "node_modules/uplot", file.from), "utf8");
			expect(vendored, `${file.to}: run node scripts/vendor-uplot.mjs`).toBe(file.header(version) + shipped);
		}
	});

	it("are Workers Static Assets in every environment, behind the guard (run_worker_first)", () => {
		for (const env of [undefined, "staging", "production"]) {
			const config = unstable_readConfig({ config: resolve(ROOT, "wrangler.toml"), env }, { hideWarnings: true });
			expect(config.assets, env ?? "default").toMatchObject({ directory: "./public", binding: "ASSETS", run_worker_first: true });
			expect(config.vars).not.toHaveProperty("ADMIN_TOKEN");
		}
	});
});

describe("npm run deploy:check and the console's admin token", () => {
	it("fails a configuration with ADMIN_TOKEN in [vars], and a bundle or a static file holding the demo token", () => {
		const dir = mkdtempSync(join(tmpdir(), "edge-guard-console-check-"));
		try {
			mkdirSync(join(dir, "public"));
			writeFileSync(join(dir, "public", "page.js"), 'const token = "demo-admin-token";\n');
			writeFileSync(join(dir, "worker.js"), 'export default { fetch: () => new Response("demo-admin-token") };\n');
			writeFileSync(
				join(dir, "wrangler.toml"),
				'name = "leaky"\nmain = "worker.js"\ncompatibility_date = "2026-04-01"\n[assets]\ndirectory = "./public"\nbinding = "ASSETS"\n[vars]\nADMIN_TOKEN = "a-real-secret-in-plain-text"\n',
			);
			const run = spawnSync(process.execPath, ["scripts/deploy-check.mjs", "--config", join(dir, "wrangler.toml")], {
				cwd: ROOT,
				encoding: "utf8",
				env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
			});
			const output = run.stdout + run.stderr;
			expect(run.status, output).toBe(1);
			expect(output).toContain("✘ default: ADMIN_TOKEN is a [vars] entry: it would ship in plain text");
			expect(output).toContain('✘ default: worker.js contains "demo-admin-token", which is local only and must not ship');
			expect(output).toContain('✘ default: static asset public/page.js contains "demo-admin-token", which is local only and must not ship');
			expect(output).not.toContain("a-real-secret-in-plain-text");
		} finally {
			rmSync(dir, { recursive: true, force: true });
		}
	});
});
