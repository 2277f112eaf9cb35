// What `npm run deploy:check` checks of the operator console (README, "Console"): its admin token
// is a secret, never a [vars] entry, and the local demo token is in no configuration; the static
// files Workers Static Assets uploads hold nothing local either.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { experimental_readRawConfig, unstable_readConfig } from "wrangler";
import { DEMO_ADMIN_TOKEN } from "./demo-admin.mjs";
import { FORBIDDEN_MARKERS } from "./deploy-bundle.mjs";

/**
 * Problems of one environment's configuration and static files (`undefined`: the top level).
 * @param {string} configPath
 * @param {string | undefined} environment
 * @returns {string[]}
 */
export function consoleProblems(configPath, environment) {
	const problems = [];
	const { rawConfig } = experimental_readRawConfig({ config: configPath });
	if (JSON.stringify(rawConfig).includes(DEMO_ADMIN_TOKEN)) problems.push(`${configPath} holds the local demo admin token "${DEMO_ADMIN_TOKEN}"`);
	const config = unstable_readConfig({ config: configPath, env: environment }, { hideWarnings: true });
	if (config.vars !== undefined && "ADMIN_TOKEN" in config.vars) {
		problems.push("ADMIN_TOKEN is a [vars] entry: it would ship in plain text; remove it and use `npx wrangler secret put ADMIN_TOKEN`");
	}
	const directory = config.assets?.directory;
	if (directory !== undefined) {
		const root = resolve(dirname(configPath), directory);
		for (const file of filesUnder(root)) {
			const text = readFileSync(file, "utf8");
			for (const marker of [...FORBIDDEN_MARKERS, DEMO_ADMIN_TOKEN]) {
				if (text.includes(marker)) problems.push(`static asset ${relative(dirname(configPath), file)} contains "${marker}", which is local only and must not ship`);
			}
		}
	}
	return problems;
}

/** @param {string} folder @returns {string[]} */
function filesUnder(folder) {
	let entries;
	try {
		entries = readdirSync(folder, { withFileTypes: true });
	} catch {
		return [];
	}
	return entries.flatMap((entry) => (entry.isDirectory() ? filesUnder(join(folder, entry.name)) : [join(folder, entry.name)]));
}
