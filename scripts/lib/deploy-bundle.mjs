// Builds exactly what `wrangler deploy` would upload for one environment (`wrangler deploy
// --dry-run --outdir`), offline, and measures it: raw and gzipped bytes of the main module, the
// "Total Upload" wrangler reports, and any local-only marker that must never ship.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, parse, resolve } from "node:path";
import { stripVTControlCharacters } from "node:util";
import { gzipSync } from "node:zlib";
import { experimental_readRawConfig, unstable_readConfig } from "wrangler";
import { ROOT } from "./build-worker.mjs";
import { DEMO_ADMIN_TOKEN } from "./demo-admin.mjs";

/** The gzipped size budget of the guard's main module, in bytes (64 KiB). */
export const GZIP_BUDGET_BYTES = 65536;

/**
 * Strings that exist only in the local stack; a deployed bundle holding any of them ships local
 * code: the demo keys (scripts/lib/demo-keys.mjs), the demo origin (demo-origin/), whose code
 * is recognised by its fault header and its worker name, and the console's demo admin token
 * (scripts/lib/demo-admin.mjs).
 */
export const FORBIDDEN_MARKERS = ["sk-demo-", "x-demo-fault", "edge-guard-demo-origin", DEMO_ADMIN_TOKEN];

const WRANGLER_BIN = resolve(ROOT, "node_modules/wrangler/bin/wrangler.js");

/** wrangler failed, or its bundle cannot be found; `output` is everything wrangler printed. */
export class DeployBundleError extends Error {
	/**
	 * @param {string} message
	 * @param {string} output
	 */
	constructor(message, output) {
		super(message);
		this.name = "DeployBundleError";
		this.output = output;
	}
}

/**
 * The environments wrangler can deploy from `configPath`: `undefined` for the top level, then
 * every `[env.<name>]`, read with wrangler's own configuration reader (its bundled TOML parser).
 * @param {string} [configPath]
 * @returns {(string | undefined)[]}
 */
export function listEnvironments(configPath = resolve(ROOT, "wrangler.toml")) {
	const { rawConfig } = experimental_readRawConfig({ config: configPath });
	return [undefined, ...Object.keys(rawConfig.env ?? {})];
}

/**
 * @typedef {object} DeployBundle
 * @property {string} environment "default" for the top level, else the `[env.<name>]` name.
 * @property {string} mainModule The main module's file name in wrangler's output (e.g. index.js).
 * @property {number} rawBytes The main module's size.
 * @property {number} gzipBytes The main module gzipped by node:zlib at level 9.
 * @property {{ uploadKiB: number, gzipKiB: number } | null} wranglerTotal wrangler's own
 *   "Total Upload: X KiB / gzip: Y KiB" (every module, zlib's default level), when printed.
 * @property {string[]} otherModules Any further files wrangler would upload beside the main module.
 * @property {{ file: string, marker: string }[]} forbidden Local-only markers found in what ships.
 * @property {string} output What wrangler printed.
 */

/**
 * Runs `wrangler deploy --dry-run --outdir <temporary folder> [--env envName]` and measures the
 * result; the folder is removed afterwards. Throws DeployBundleError when wrangler exits non-zero
 * or reports an error.
 * @param {string | undefined} envName `undefined` for the top-level (default) environment.
 * @param {{ config?: string }} [options] `config`: the wrangler configuration (default: the project's wrangler.toml).
 * @returns {Promise<DeployBundle>}
 */
export async function buildDeployBundle(envName, options = {}) {
	const configPath = resolve(options.config ?? resolve(ROOT, "wrangler.toml"));
	const outdir = mkdtempSync(join(tmpdir(), "edge-guard-deploy-"));
	try {
		const args = [WRANGLER_BIN, "deploy", "--dry-run", "--outdir", outdir, "--config", configPath];
		if (envName !== undefined) args.push("--env", envName);
		const { code, output } = await run(process.execPath, args);
		if (code !== 0) throw new DeployBundleError(`wrangler deploy --dry-run exited with ${code}`, output);
		if (/\[ERROR\]/.test(output)) throw new DeployBundleError("wrangler deploy --dry-run reported an error", output);

		const config = unstable_readConfig({ config: configPath, env: envName }, { hideWarnings: true });
		const files = readdirSync(outdir).filter((file) => file !== "README.md" && file !== "bundle-meta.json");
		const modules = files.filter((file) => !file.endsWith(".map"));
		const mainModule = findMainModule(config.main, modules);
		if (mainModule === undefined) {
			throw new DeployBundleError(`cannot tell the main module among wrangler's output (${files.join(", ") || "no files"})`, output);
		}
		// Source maps ship only when the configuration uploads them.
		const shipped = config.upload_source_maps ? files : modules;
		const forbidden = [];
		for (const file of shipped) {
			const text = readFileSync(join(outdir, file), "utf8");
			for (const marker of FORBIDDEN_MARKERS) if (text.includes(marker)) forbidden.push({ file, marker });
		}
		const bytes = readFileSync(join(outdir, mainModule));
		return {
			environment: envName ?? "default",
			mainModule,
			rawBytes: bytes.byteLength,
			gzipBytes: gzipSync(bytes, { level: 9 }).byteLength,
			wranglerTotal: parseTotalUpload(output),
			otherModules: modules.filter((file) => file !== mainModule),
			forbidden,
			output,
		};
	} finally {
		rmSync(outdir, { recursive: true, force: true });
	}
}

/**
 * wrangler names the bundle after its entry point (`main = "src/index.ts"` → index.js).
 * @param {string | undefined} main
 * @param {string[]} modules
 */
function findMainModule(main, modules) {
	if (main !== undefined) {
		const name = parse(basename(main)).name;
		const found = modules.find((file) => file === `${name}.js` || file === `${name}.mjs`);
		if (found !== undefined) return found;
	}
	return modules.length === 1 ? modules[0] : undefined;
}

/**
 * Reads wrangler's "Total Upload: 91.02 KiB / gzip: 24.39 KiB".
 * @param {string} output
 */
export function parseTotalUpload(output) {
	const found = /Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/.exec(output);
	return found ? { uploadKiB: Number(found[1]), gzipKiB: Number(found[2]) } : null;
}

/**
 * Runs a command offline (no metrics, no banner and so no update check, no colour) and collects
 * its stdout and stderr, interleaved, without ANSI escapes.
 * @param {string} command
 * @param {string[]} args
 * @returns {Promise<{ code: number | null, output: string }>}
 */
function run(command, args) {
	if (!existsSync(WRANGLER_BIN)) {
		return Promise.resolve({ code: 127, output: `wrangler is not installed (${WRANGLER_BIN}); run npm ci` });
	}
	return new Promise((done, fail) => {
		const child = spawn(command, args, {
			cwd: ROOT,
			env: { ...process.env, WRANGLER_SEND_METRICS: "false", WRANGLER_HIDE_BANNER: "true", FORCE_COLOR: "0", NO_COLOR: "1", CI: "true" },
			stdio: ["ignore", "pipe", "pipe"],
		});
		let output = "";
		child.stdout.on("data", (chunk) => {
			output += chunk;
		});
		child.stderr.on("data", (chunk) => {
			output += chunk;
		});
		child.once("error", fail);
		child.once("close", (code) => done({ code, output: stripVTControlCharacters(output) }));
	});
}
