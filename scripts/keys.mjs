#!/usr/bin/env node
// `npm run keys -- <command>`: manage API keys in the guard's key store. Keys are printed once, at
// creation, and stored only as their SHA-256. Local by default (the KV `npm start` uses);
// `--remote` works on the deployed namespace through wrangler (`--env NAME` picks the environment).
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { ROOT } from "./lib/build-worker.mjs";
import { openLocalKeys, openRemoteKeys } from "./lib/kv-stores.mjs";
import { loadTs } from "./lib/load-ts.mjs";
import { tellConsole } from "./lib/tell-console.mjs";
import { openLocalUsage } from "./lib/usage-store.mjs";

process.env.WRANGLER_SEND_METRICS = "false";

const USAGE = `usage: npm run keys -- <command> [--remote] [--env NAME]
  create --org ORG --scopes messages,batches,files,models [--name NAME] [--workspace WS]
  list
  disable ID | enable ID | delete ID
  usage --org ORG          spend and remaining budget per UTC day and month (local only)`;
const SCOPES = ["messages", "batches", "files", "models"];
const NAME = /^[A-Za-z0-9_.:-]{1,128}$/;

/** @param {string} message */
function fail(message) {
	console.error(`keys: ${message}\n${USAGE}`);
	process.exit(2);
}

let parsed;
try {
	parsed = parseArgs({
		allowPositionals: true,
		options: {
			org: { type: "string" },
			scopes: { type: "string" },
			name: { type: "string" },
			workspace: { type: "string" },
			remote: { type: "boolean", default: false },
			env: { type: "string" },
		},
	});
} catch (error) {
	fail(error instanceof Error ? error.message : String(error));
}
const { values, positionals } = parsed;
const [command, id, ...extra] = positionals;
if (extra.length > 0) fail(`unexpected arguments: ${extra.join(" ")}`);

const { KeyStore, generateApiKey, hashApiKey, newKeyId, formatUsd, parseTierConfig, resolveLimits } = await loadTs("scripts/lib/key-tools.ts");
if (command === "usage") {
	await showUsage();
	process.exit(0);
}
const store = values.remote ? openRemoteKeys(values.env) : await openLocalKeys(values.env);
const keys = new KeyStore(store.kv);
const where = values.remote ? `the deployed KEYS namespace${values.env ? ` (env ${values.env})` : ""}` : "the local KV (npm start)";

try {
	switch (command) {
		case "create": {
			if (!values.org || !NAME.test(values.org)) fail("create needs --org ORG (letters, digits, _ . : -)");
			const scopes = (values.scopes ?? "").split(",").map((scope) => scope.trim()).filter(Boolean);
			if (scopes.length === 0) fail(`create needs --scopes, a comma-separated list of ${SCOPES.join(", ")}`);
			const unknown = scopes.filter((scope) => !SCOPES.includes(scope));
			if (unknown.length > 0) fail(`unknown scope ${unknown.join(", ")}; scopes are ${SCOPES.join(", ")}`);
			if (values.workspace !== undefined && !NAME.test(values.workspace)) fail("--workspace: letters, digits, _ . : -");
			const key = generateApiKey();
			const record = {
				hash: await hashApiKey(key),
				id: newKeyId(),
				org_id: values.org,
				workspace_id: values.workspace ?? null,
				name: values.name ?? "",
				scopes: [...new Set(scopes)],
				status: "active",
				created_at: new Date().toISOString(),
			};
			await keys.save(record);
			console.log(`Created ${record.id} for ${record.org_id} (scopes: ${record.scopes.join(", ")}) in ${where}.`);
			console.log("The key is shown this once; only its SHA-256 is stored:\n");
			console.log(`  ${key}\n`);
			break;
		}
		case "list": {
			const records = await keys.all();
			if (records.length === 0) console.log(`No keys in ${where}.`);
			for (const r of records.sort((a, b) => a.created_at.localeCompare(b.created_at))) {
				const workspace = r.workspace_id ? ` workspace=${r.workspace_id}` : "";
				console.log(`${r.id}  org=${r.org_id}${workspace}  scopes=${r.scopes.join(",")}  ${r.status}  ${r.created_at}  ${r.name}`);
			}
			break;
		}
		case "disable":
		case "enable": {
			if (!id) fail(`${command} needs a key ID (see list)`);
			const updated = await keys.setStatus(id, command === "disable" ? "disabled" : "active");
			if (!updated) fail(`no key ${id} in ${where}`);
			console.log(`${id} is ${updated.status}.`);
			// The operator console's fast revocation (scripts/lib/tell-console.mjs).
			console.log(await tellConsole({ remote: values.remote, orgId: updated.org_id, keyId: id, revoked: command === "disable" }));
			break;
		}
		case "delete": {
			if (!id) fail("delete needs a key ID (see list)");
			const gone = await keys.byId(id);
			if (!gone || !(await keys.remove(id))) fail(`no key ${id} in ${where}`);
			console.log(`${id} is deleted.`);
			console.log(await tellConsole({ remote: values.remote, orgId: gone.org_id, keyId: id, revoked: true }));
			break;
		}
		default:
			fail(command ? `unknown command ${command}` : "no command");
	}
} finally {
	await store.close();
}

/**
 * `usage --org ORG`: the organisation's spend in the current UTC day and month, per scope (the
 * organisation, each workspace and key that spent), against the budgets wrangler.toml gives them.
 * Local only: spend lives in the organisation's usage object, which only the Worker reaches once
 * deployed (its log lines carry each request's cost as `decisions.spend`).
 */
async function showUsage() {
	if (values.remote) fail("usage reads the local usage objects of npm start; deployed, each request's cost is in its log line (decisions.spend)");
	if (!values.org || !NAME.test(values.org)) fail("usage needs --org ORG");
	const { workerOptions } = unstable_getMiniflareWorkerOptions(resolve(ROOT, "wrangler.toml"), values.env);
	const bindings = workerOptions.bindings ?? {};
	const tiers = bindings.TIERS === undefined ? undefined : parseTierConfig(bindings);
	const usage = await openLocalUsage(values.env);
	let lines;
	try {
		lines = await usage.report(values.org);
	} finally {
		await usage.close();
	}
	const tier = tiers === undefined ? "none (no TIERS)" : resolveLimits(tiers, values.org).tier;
	console.log(`Spend of ${values.org} (tier ${tier}) in the local usage object (npm start), USD:`);
	/** @param {{ scope: string, id?: string }} line */
	const budgetsOf = (line) => {
		if (tiers === undefined) return undefined;
		const limits = resolveLimits(tiers, values.org, line.scope === "workspace" ? line.id : undefined);
		return limits.budgets?.[line.scope];
	};
	const rows = [...lines];
	// The organisation's own budgets are shown even before it spends anything.
	for (const period of ["day", "month"]) {
		if (!rows.some((line) => line.scope === "organization" && line.period === period)) {
			rows.push({ scope: "organization", period, window: "", spentNanos: 0, budgetNanos: 0, resetAt: nextTurn(period) });
		}
	}
	const order = { organization: 0, workspace: 1, key: 2 };
	rows.sort((a, b) => order[a.scope] - order[b.scope] || (a.id ?? "").localeCompare(b.id ?? "") || a.period.localeCompare(b.period));
	for (const line of rows) {
		const who = line.scope === "organization" ? "organization" : `${line.scope} ${line.id}`;
		const budget = budgetsOf(line)?.[line.period];
		const left = budget === undefined ? "no budget" : `budget ${formatUsd(budget)}, remaining ${formatUsd(Math.max(0, budget - line.spentNanos))}${line.spentNanos >= budget ? " (spent)" : ""}`;
		console.log(`  ${who.padEnd(28)} ${line.period.padEnd(5)} spent ${formatUsd(line.spentNanos).padEnd(12)} ${left}; resets ${new Date(line.resetAt).toISOString()}`);
	}
}

/** @param {string} period */
function nextTurn(period) {
	const now = new Date();
	return period === "day" ? Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1) : Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);
}
