#!/usr/bin/env node
// `npm run keys -- <command>`: manage API keys in the guard's key store. Keys are printed once, at
// creation, and stored only as their SHA-256. Local by default (the KV `npm start` uses);
// `--remote` works on the deployed namespace through wrangler (`--env NAME` picks the environment).
import { parseArgs } from "node:util";
import { openLocalKeys, openRemoteKeys } from "./lib/kv-stores.mjs";
import { loadTs } from "./lib/load-ts.mjs";

process.env.WRANGLER_SEND_METRICS = "false";

const USAGE = `usage: npm run keys -- <command> [--remote] [--env NAME]
  create --org ORG --scopes messages,batches,files,models [--name NAME] [--workspace WS]
  list
  disable ID | enable ID | delete ID`;
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

const { KeyStore, generateApiKey, hashApiKey, newKeyId } = await loadTs("scripts/lib/key-tools.ts");
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
			console.log(`${id} is ${updated.status}. Isolates that cached it notice within KEY_CACHE_TTL_SECONDS.`);
			break;
		}
		case "delete": {
			if (!id) fail("delete needs a key ID (see list)");
			if (!(await keys.remove(id))) fail(`no key ${id} in ${where}`);
			console.log(`${id} is deleted.`);
			break;
		}
		default:
			fail(command ? `unknown command ${command}` : "no command");
	}
} finally {
	await store.close();
}
