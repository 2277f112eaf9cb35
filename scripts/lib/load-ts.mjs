// Loads one of the Worker's pure TypeScript modules into Node, so scripts run the same code.
import { build } from "esbuild";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT } from "./build-worker.mjs";

/**
 * Bundles `entry` (relative to the project root) for Node and imports it.
 * @param {string} entry
 */
export async function loadTs(entry) {
	const name = entry.replace(/[^A-Za-z0-9]+/g, "-");
	const outfile = resolve(ROOT, ".build", "node", `${name}.mjs`);
	await build({
		entryPoints: [resolve(ROOT, entry)],
		outfile,
		bundle: true,
		format: "esm",
		platform: "node",
		target: "node20",
		logLevel: "warning",
	});
	return import(pathToFileURL(outfile).href);
}
