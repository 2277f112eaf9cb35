// The local stack: the guard and the bundled demo origin in bare workerd through Miniflare's API.
// Not `wrangler dev`: its proxy layer turned a Worker's early 413 to a chunked upload into
// "503 Your worker restarted mid-request", while bare workerd delivers the Worker's own answer.
import { Log, LogLevel, Miniflare } from "miniflare";
import { resolve } from "node:path";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { buildWorker, ROOT } from "./build-worker.mjs";
import { DEMO_KEYS } from "./demo-keys.mjs";
import { loadTs } from "./load-ts.mjs";

/**
 * Starts the guard (configured by wrangler.toml, environment `env`) in front of the demo origin.
 * Seeds the demo keys (scripts/lib/demo-keys.mjs) into the local KEYS namespace unless
 * `seedDemoKeys` is false.
 * `omitVars` removes variables (to run without a feature); `onStdout` receives workerd's output.
 * @param {{ host?: string, port?: number, env?: string, vars?: Record<string, unknown>, omitVars?: string[], persist?: boolean, quiet?: boolean, seedDemoKeys?: boolean, onStdout?: (text: string) => void }} options
 * @returns {Promise<{ url: URL, mf: Miniflare, dispose: () => Promise<void> }>}
 */
export async function startLocalStack(options = {}) {
	const [guardScript, originScript] = await Promise.all([
		buildWorker("src/index.ts", "edge-guard"),
		buildWorker("demo-origin/src/index.ts", "demo-origin"),
	]);
	const { workerOptions } = unstable_getMiniflareWorkerOptions(resolve(ROOT, "wrangler.toml"), options.env);
	const bindings = { ...workerOptions.bindings, ...options.vars };
	for (const name of options.omitVars ?? []) delete bindings[name];
	const mf = new Miniflare({
		host: options.host ?? "127.0.0.1",
		port: options.port ?? 8787,
		log: new Log(options.quiet ? LogLevel.WARN : LogLevel.INFO),
		// Offline: use Miniflare's placeholder `request.cf` instead of fetching one.
		cf: false,
		...(options.onStdout
			? {
					handleRuntimeStdio: (/** @type {import("node:stream").Readable} */ stdout, /** @type {import("node:stream").Readable} */ stderr) => {
						stdout.on("data", (chunk) => options.onStdout?.(String(chunk)));
						stderr.resume();
					},
				}
			: {}),
		defaultPersistRoot: options.persist === false ? undefined : resolve(ROOT, ".wrangler/state/v3"),
		workers: [
			{
				...workerOptions,
				name: "edge-guard",
				modules: true,
				scriptPath: guardScript,
				bindings,
			},
			{
				name: "edge-guard-demo-origin",
				modules: true,
				scriptPath: originScript,
				compatibilityDate: workerOptions.compatibilityDate,
			},
		],
	});
	const url = await mf.ready;
	if (options.seedDemoKeys !== false) await seedDemoKeys(mf);
	return { url, mf, dispose: () => mf.dispose() };
}

/** @param {Miniflare} mf */
async function seedDemoKeys(mf) {
	const { KeyStore, hashApiKey } = await loadTs("scripts/lib/key-tools.ts");
	const store = new KeyStore(await mf.getKVNamespace("KEYS", "edge-guard"));
	for (const { key, ...fields } of DEMO_KEYS) {
		await store.save({ ...fields, hash: await hashApiKey(key), workspace_id: null, status: "active", created_at: new Date(0).toISOString() });
	}
}
