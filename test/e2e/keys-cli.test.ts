import Anthropic from "@anthropic-ai/sdk";
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalServer, startLocalServer } from "./local-server";
import { runNode } from "./run-node";

const ROOT = resolve(__dirname, "../..");
let server: LocalServer;

/** Runs `npm run keys -- <args>` without blocking the event loop (see run-node.ts). */
async function keys(args: string[], env: Record<string, string> = {}) {
	const run = await runNode(["scripts/keys.mjs", ...args], {
		cwd: ROOT,
		env: { ...process.env, WRANGLER_SEND_METRICS: "false", ...env },
	});
	return { status: run.status, out: run.stdout, err: run.stderr };
}

beforeAll(async () => {
	server = await startLocalServer();
});

afterAll(async () => {
	await server?.stop();
});

describe("npm run keys against the local stack", () => {
	it("creates a key that works at once against npm start, and lists it without the key", async () => {
		const created = await keys(["create", "--org", "org_cli", "--scopes", "messages,models", "--name", "cli test"]);
		expect(created.status).toBe(0);
		const key = /\s(sk-guard-[0-9A-Za-z]{40})\s/.exec(created.out)?.[1];
		const id = /Created (key_[0-9A-Za-z]{16})/.exec(created.out)?.[1];
		expect(key).toBeDefined();
		expect(id).toBeDefined();

		const client = new Anthropic({ apiKey: key, baseURL: server.url, maxRetries: 0 });
		const message = await client.messages.create({ model: "m", max_tokens: 8, messages: [{ role: "user", content: "hi" }] });
		expect(message.type).toBe("message");

		const listed = await keys(["list"]);
		expect(listed.status).toBe(0);
		expect(listed.out).toContain(`${id}  org=org_cli  scopes=messages,models  active`);
		expect(listed.out).not.toContain(key);
		expect(listed.out).not.toContain("sk-demo");

		expect((await keys(["disable", id as string])).out).toContain(`${id} is disabled`);
		expect((await keys(["list"])).out).toContain(`${id}  org=org_cli  scopes=messages,models  disabled`);
		expect((await keys(["enable", id as string])).out).toContain(`${id} is active`);
		expect((await keys(["delete", id as string])).out).toContain(`${id} is deleted`);
		expect((await keys(["list"])).out).not.toContain(id);
		// Whatever it printed, the key appears only in create's own output.
		expect(server.output()).not.toContain(key);
	});

	it("refuses bad input with a clear message and exit code 2", async () => {
		expect((await keys(["create", "--org", "o"])).err).toContain("create needs --scopes");
		expect((await keys(["create", "--org", "o", "--scopes", "messages,admin"])).err).toContain("unknown scope admin");
		expect((await keys(["disable"])).err).toContain("disable needs a key ID");
		const missing = await keys(["disable", "key_nope"]);
		expect(missing.status).toBe(2);
		expect(missing.err).toContain("no key key_nope");
		expect((await keys(["frobnicate"])).err).toContain("unknown command frobnicate");
	});

	it("works on the deployed namespace through wrangler with --remote", async () => {
		// A stand-in for wrangler that keeps `wrangler kv key` data in a JSON file and logs its calls.
		const dir = mkdtempSync(join(tmpdir(), "edge-guard-wrangler-"));
		const data = join(dir, "kv.json");
		const calls = join(dir, "calls.log");
		writeFileSync(data, "{}");
		const fake = join(dir, "wrangler");
		writeFileSync(
			fake,
			`#!${process.execPath}
const fs = require("node:fs");
const [, , kv, key, op, ...rest] = process.argv;
fs.appendFileSync(${JSON.stringify(calls)}, process.argv.slice(2).join(" ") + "\\n");
const store = JSON.parse(fs.readFileSync(${JSON.stringify(data)}, "utf8"));
const save = () => fs.writeFileSync(${JSON.stringify(data)}, JSON.stringify(store));
if (op === "put") { store[rest[0]] = rest[1]; save(); }
else if (op === "get") { if (!(rest[0] in store)) { process.stderr.write("Value not found"); process.exit(1); } process.stdout.write(store[rest[0]]); }
else if (op === "delete") { delete store[rest[0]]; save(); }
else if (op === "list") { const prefix = rest[rest.indexOf("--prefix") + 1]; process.stdout.write(JSON.stringify(Object.keys(store).filter((k) => k.startsWith(prefix)).map((name) => ({ name })))); }
`,
		);
		chmodSync(fake, 0o755);
		const env = { EDGE_GUARD_WRANGLER: fake };
		const created = await keys(["create", "--org", "org_remote", "--scopes", "files", "--remote", "--env", "production"], env);
		expect(created.status).toBe(0);
		expect(created.out).toContain("in the deployed KEYS namespace (env production)");
		const id = /Created (key_[0-9A-Za-z]{16})/.exec(created.out)?.[1] as string;
		expect((await keys(["list", "--remote", "--env", "production"], env)).out).toContain(`${id}  org=org_remote  scopes=files  active`);
		expect((await keys(["disable", id, "--remote", "--env", "production"], env)).status).toBe(0);
		const log = readFileSync(calls, "utf8");
		expect(log).toContain("kv key put");
		expect(log).toMatch(/--binding KEYS --remote --env production/);
		const stored = readFileSync(data, "utf8");
		const records = Object.entries(JSON.parse(stored) as Record<string, string>).filter(([name]) => name.startsWith("key:"));
		expect(records.map(([, value]) => JSON.parse(value).status)).toEqual(["disabled"]);
		const key = /\s(sk-guard-[0-9A-Za-z]{40})\s/.exec(created.out)?.[1] as string;
		expect(stored).not.toContain(key);
	});
});
