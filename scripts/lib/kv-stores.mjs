// Where `npm run keys` reads and writes: the local KV that `npm start` uses, or the deployed
// namespace through wrangler.
import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { ROOT } from "./build-worker.mjs";

const run = promisify(execFile);

/** The directory `npm start` persists its local state in. */
export const LOCAL_STATE = resolve(ROOT, ".wrangler/state/v3");

/**
 * The local `KEYS` namespace, as `npm start` sees it (same namespace ID, same persistence).
 * @param {string | undefined} env
 */
export async function openLocalKeys(env) {
	const { workerOptions } = unstable_getMiniflareWorkerOptions(resolve(ROOT, "wrangler.toml"), env);
	const namespaces = workerOptions.kvNamespaces ?? {};
	if (!("KEYS" in namespaces)) throw new Error("wrangler.toml binds no KV namespace named KEYS");
	const mf = new Miniflare({
		modules: true,
		script: "export default { fetch() { return new Response(null, { status: 204 }); } }",
		kvNamespaces: { KEYS: namespaces.KEYS },
		defaultPersistRoot: LOCAL_STATE,
		cf: false,
	});
	const kv = await mf.getKVNamespace("KEYS");
	return { kv, close: () => mf.dispose() };
}

/**
 * The deployed `KEYS` namespace through `wrangler kv key ...` (`EDGE_GUARD_WRANGLER` names
 * another wrangler executable, for tests).
 * @param {string | undefined} env
 */
export function openRemoteKeys(env) {
	const wrangler = process.env.EDGE_GUARD_WRANGLER ?? resolve(ROOT, "node_modules/.bin/wrangler");
	const scope = ["--binding", "KEYS", "--remote", ...(env ? ["--env", env] : [])];
	/** @param {string[]} args */
	const wr = async (args) => {
		const { stdout } = await run(wrangler, ["kv", "key", ...args, ...scope], {
			cwd: ROOT,
			env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
			maxBuffer: 64 * 1024 * 1024,
		});
		return stdout;
	};
	const kv = {
		/** @param {string} key */
		async get(key) {
			try {
				return await wr(["get", key, "--text"]);
			} catch (error) {
				if (/not found/i.test(String(/** @type {{ stderr?: string }} */ (error).stderr ?? error))) return null;
				throw error;
			}
		},
		/** @param {string} key @param {string} value */
		async put(key, value) {
			await wr(["put", key, value]);
		},
		/** @param {string} key */
		async delete(key) {
			await wr(["delete", key]);
		},
		/** @param {{ prefix: string }} options */
		async list(options) {
			const keys = JSON.parse(await wr(["list", "--prefix", options.prefix]));
			return { keys, list_complete: true };
		},
	};
	return { kv, close: async () => undefined };
}
