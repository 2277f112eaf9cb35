// Bundles a Worker's TypeScript entry into one ES module, as wrangler would, for Miniflare.
import { build } from "esbuild";
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The project's root folder. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/**
 * Bundles `entry` (relative to the project root, or absolute) to `.build/<name>.mjs` and returns its absolute
 * path.
 * @param {string} entry
 * @param {string} name
 */
export async function buildWorker(entry, name) {
	const outfile = resolve(ROOT, ".build", `${name}.mjs`);
	mkdirSync(dirname(outfile), { recursive: true });
	await build({
		entryPoints: [resolve(ROOT, entry)],
		outfile,
		bundle: true,
		format: "esm",
		platform: "neutral",
		target: "es2022",
		conditions: ["workerd", "worker", "browser"],
		mainFields: ["module", "main"],
		external: ["cloudflare:*"],
		sourcemap: "inline",
		logLevel: "warning",
	});
	return outfile;
}
