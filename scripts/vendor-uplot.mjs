#!/usr/bin/env node
// `node scripts/vendor-uplot.mjs`: copies uPlot (the console's charts, MIT) from node_modules into
// public/_guard/vendor/, so the console works offline and Workers Static Assets serves it. Each
// file gets one first line that keeps Biome off minified code; the rest is byte for byte the npm
// package's (test/e2e/console-files.test.ts checks it). Run it after upgrading uplot.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { ROOT } from "./lib/build-worker.mjs";

/** The vendored files: source in node_modules/uplot, target in public/_guard/vendor, first line. */
export const VENDORED = [
	{ from: "dist/uPlot.iife.min.js", to: "uPlot.iife.min.js", header: (version) => `// biome-ignore-all lint: uPlot ${version}, vendored as its npm package ships it (scripts/vendor-uplot.mjs)\n` },
	{ from: "dist/uPlot.min.css", to: "uPlot.min.css", header: (version) => `/* biome-ignore-all lint: uPlot ${version}, vendored as its npm package ships it (scripts/vendor-uplot.mjs) */\n` },
	{ from: "LICENSE", to: "uPlot.LICENSE.txt", header: () => "" },
];

const source = resolve(ROOT, "node_modules/uplot");
const target = resolve(ROOT, "public/_guard/vendor");
const { version } = JSON.parse(readFileSync(resolve(source, "package.json"), "utf8"));

if (import.meta.url === `file://${process.argv[1]}`) {
	mkdirSync(target, { recursive: true });
	for (const file of VENDORED) {
		writeFileSync(resolve(target, file.to), file.header(version) + readFileSync(resolve(source, file.from), "utf8"));
		console.log(`public/_guard/vendor/${file.to} <- node_modules/uplot/${file.from} (uPlot ${version})`);
	}
}
