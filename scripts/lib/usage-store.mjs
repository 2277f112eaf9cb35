// Where `npm run keys -- usage` reads spend: the local usage objects that `npm start` keeps (same
// Worker name, class and persistence), through the guard's own UsageObject class.
import { resolve } from "node:path";
import { Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { buildWorker, ROOT } from "./build-worker.mjs";
import { LOCAL_STATE } from "./kv-stores.mjs";

/**
 * The local `USAGE` namespace as `npm start` sees it. `report(orgId)` answers the organisation's
 * spend lines for the current UTC day and month (see src/limits/spend/spend-ledger.ts).
 * @param {string | undefined} env
 */
export async function openLocalUsage(env) {
	const { workerOptions } = unstable_getMiniflareWorkerOptions(resolve(ROOT, "wrangler.toml"), env);
	if (!workerOptions.durableObjects || !("USAGE" in workerOptions.durableObjects)) throw new Error("wrangler.toml binds no Durable Object named USAGE");
	const scriptPath = await buildWorker("src/index.ts", "edge-guard");
	const mf = new Miniflare({
		name: "edge-guard",
		modules: true,
		scriptPath,
		compatibilityDate: workerOptions.compatibilityDate,
		compatibilityFlags: workerOptions.compatibilityFlags,
		durableObjects: { USAGE: workerOptions.durableObjects.USAGE },
		defaultPersistRoot: LOCAL_STATE,
		cf: false,
	});
	const namespace = await mf.getDurableObjectNamespace("USAGE");
	return {
		/** @param {string} orgId */
		report: async (orgId) => /** @type {Promise<SpendLine[]>} */ (namespace.get(namespace.idFromName(orgId)).report()),
		close: () => mf.dispose(),
	};
}

/**
 * @typedef {{ scope: "organization" | "workspace" | "key", id?: string, period: "day" | "month", window: string, spentNanos: number, budgetNanos: number, resetAt: number }} SpendLine
 */
