#!/usr/bin/env node
// `npm run deploy:check [-- --config wrangler.toml] [--env NAME|default]`: builds exactly what
// `wrangler deploy` would upload (`--dry-run`, offline) for the top-level environment and every
// [env.*], prints each bundle's size, and exits non-zero when wrangler fails, a bundle is over
// the gzip budget, or a bundle holds anything local (demo keys, the demo origin's code), or the
// operator console's admin token is in the configuration (a [vars] ADMIN_TOKEN, or the local demo
// token anywhere) or anything local is in its static files.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { consoleProblems } from "./lib/console-checks.mjs";
import { buildDeployBundle, DeployBundleError, GZIP_BUDGET_BYTES, listEnvironments } from "./lib/deploy-bundle.mjs";

process.env.WRANGLER_SEND_METRICS = "false";

const { values } = parseArgs({ options: { config: { type: "string", default: "wrangler.toml" }, env: { type: "string" } } });
const configPath = resolve(values.config);
if (!existsSync(configPath)) {
	console.error(`deploy-check: no such file ${configPath}`);
	process.exit(2);
}

// `--env default` is the top level, as the table names it (unless there is an [env.default]).
const known = listEnvironments(configPath);
const chosen = values.env === "default" && !known.includes("default") ? undefined : values.env;
if (chosen !== undefined && !known.includes(chosen)) {
	console.error(`deploy-check: ${configPath} has no [env.${chosen}]`);
	process.exit(2);
}
const environments = values.env !== undefined ? [chosen] : known;
const header = ["environment", "module", "raw bytes", "gzip -9 bytes", "wrangler total upload", "budget (gzip)", "local-only code"];
const rows = [];
const problems = [];
for (const environment of environments) {
	const label = environment ?? "default";
	for (const problem of consoleProblems(configPath, environment)) problems.push(`${label}: ${problem}`);
	let bundle;
	try {
		bundle = await buildDeployBundle(environment, { config: configPath });
	} catch (error) {
		const output = error instanceof DeployBundleError ? `\n${error.output.trimEnd()}` : "";
		console.error(`✘ ${label}: ${error instanceof Error ? error.message : error}${output}`);
		problems.push(`${label}: wrangler failed`);
		continue;
	}
	if (bundle.output.includes("[WARNING]")) console.warn(`⚠ ${label}: wrangler warned:\n${bundle.output.trimEnd()}`);
	const total = bundle.wranglerTotal ? `${bundle.wranglerTotal.uploadKiB.toFixed(2)} KiB / gzip ${bundle.wranglerTotal.gzipKiB.toFixed(2)} KiB` : "not printed";
	const over = bundle.gzipBytes > GZIP_BUDGET_BYTES;
	const percent = ((bundle.gzipBytes / GZIP_BUDGET_BYTES) * 100).toFixed(1);
	const local = bundle.forbidden.length === 0 ? "✔ none" : `✘ ${[...new Set(bundle.forbidden.map(({ marker }) => marker))].join(", ")}`;
	rows.push([label, bundle.mainModule, String(bundle.rawBytes), String(bundle.gzipBytes), total, `${over ? "✘ over" : "✔"} ${percent}% of ${GZIP_BUDGET_BYTES}`, local]);
	if (over) problems.push(`${label}: ${bundle.mainModule} is ${bundle.gzipBytes} bytes gzipped, over the budget of ${GZIP_BUDGET_BYTES}`);
	for (const { file, marker } of bundle.forbidden) problems.push(`${label}: ${file} contains "${marker}", which is local only and must not ship`);
	if (bundle.otherModules.length > 0) console.log(`  ${label}: also uploads ${bundle.otherModules.join(", ")}`);
}

if (rows.length > 0) {
	const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]?.length ?? 0)));
	const line = (/** @type {string[]} */ cells) => cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join("  ").trimEnd();
	console.log(line(header));
	console.log(line(widths.map((width) => "-".repeat(width))));
	for (const row of rows) console.log(line(row));
}
for (const problem of problems) console.error(`✘ ${problem}`);
process.exit(problems.length === 0 ? 0 : 1);
