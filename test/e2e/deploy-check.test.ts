import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
// @ts-expect-error: a plain ES module shared with the scripts; its JSDoc types are not checked here.
import { buildDeployBundle, GZIP_BUDGET_BYTES } from "../../scripts/lib/deploy-bundle.mjs";

const ROOT = resolve(__dirname, "../..");

interface DeployBundle {
	environment: string;
	mainModule: string;
	rawBytes: number;
	gzipBytes: number;
	wranglerTotal: { uploadKiB: number; gzipKiB: number } | null;
	forbidden: { file: string; marker: string }[];
}

function deployCheck(...args: string[]): { status: number | null; stdout: string; output: string } {
	const run = spawnSync(process.execPath, ["scripts/deploy-check.mjs", ...args], {
		cwd: ROOT,
		encoding: "utf8",
		env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
	});
	return { status: run.status, stdout: run.stdout, output: run.stdout + run.stderr };
}

describe("npm run deploy:check", () => {
	it("builds the default environment as wrangler deploy would, within the gzip budget", () => {
		const { status, stdout, output } = deployCheck("--env", "default");
		expect(output, output).not.toContain("✘");
		expect(status, output).toBe(0);
		const lines = stdout.trimEnd().split("\n");
		expect(lines[0]).toMatch(/^environment\s+module\s+raw bytes\s+gzip -9 bytes\s+wrangler total upload\s+budget \(gzip\)\s+local-only code$/);
		expect(lines[1]).toMatch(/^-+(\s+-+){6}$/);
		const row = lines.find((line) => line.startsWith("default "));
		const found = /^default\s+index\.js\s+(\d+)\s+(\d+)\s+([\d.]+) KiB \/ gzip ([\d.]+) KiB\s+✔ [\d.]+% of 65536\s+✔ none$/.exec(row ?? "");
		expect(found, stdout).not.toBeNull();
		const [raw, gzip, uploadKiB, gzipKiB] = (found ?? []).slice(1).map(Number) as [number, number, number, number];
		expect(raw).toBeGreaterThan(10_000);
		expect(gzip).toBeGreaterThan(1000);
		expect(gzip).toBeLessThan(raw);
		expect(gzip).toBeLessThanOrEqual(65536);
		// wrangler's own figure (its default gzip level) agrees with ours to within a few percent.
		expect(Math.abs(gzipKiB * 1024 - gzip) / gzip).toBeLessThan(0.05);
		expect(Math.abs(uploadKiB * 1024 - raw) / raw).toBeLessThan(0.01);
	});

	it("measures the default environment through buildDeployBundle, with nothing local in it", async () => {
		const bundle: DeployBundle = await buildDeployBundle(undefined);
		expect(bundle.environment).toBe("default");
		expect(bundle.mainModule).toBe("index.js");
		expect(bundle.gzipBytes).toBeLessThanOrEqual(GZIP_BUDGET_BYTES);
		expect(bundle.wranglerTotal).not.toBeNull();
		expect(bundle.forbidden).toEqual([]);
	});

	it("fails a bundle holding a demo key or the demo origin's code, and a build that fails", () => {
		const dir = mkdtempSync(join(tmpdir(), "edge-guard-deploy-check-"));
		try {
			writeFileSync(join(dir, "worker.js"), 'export default { fetch: () => new Response("sk-demo-key", { headers: { "x-demo-fault": "1" } }) };\n');
			writeFileSync(join(dir, "wrangler.toml"), 'name = "leaky"\nmain = "worker.js"\ncompatibility_date = "2026-04-01"\n');
			const leaky = deployCheck("--config", join(dir, "wrangler.toml"));
			expect(leaky.status, leaky.output).toBe(1);
			expect(leaky.output).toContain('✘ default: worker.js contains "sk-demo-", which is local only and must not ship');
			expect(leaky.output).toContain('✘ default: worker.js contains "x-demo-fault", which is local only and must not ship');

			writeFileSync(join(dir, "worker.js"), 'import "./missing.js";\nexport default { fetch: () => new Response("ok") };\n');
			const broken = deployCheck("--config", join(dir, "wrangler.toml"));
			expect(broken.status, broken.output).toBe(1);
			expect(broken.output).toContain("✘ default: wrangler deploy --dry-run exited with 1");
			expect(broken.output).toContain('Could not resolve "./missing.js"');
		} finally {
			rmSync(dir, { recursive: true, force: true });
		}
	});
});
