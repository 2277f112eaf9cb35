// The stack of `npm run bench -- locations`: ONE Miniflare (one workerd process) holding, for each
// distance of the usage object, a Worker that defines the `UsageObject` class behind a delay on
// every RPC method (scripts/bench/locations-usage-worker.js), and for each (distance, mode) K guard
// Workers, the guard's own bundle unchanged, all bound to that distance's `USAGE` namespace by
// `scriptName`. Each guard Worker is its own isolate, with its own module state, key cache and lease
// cache, so K of them are K isolates sharing one organisation's object, as K locations would.
// Clients reach a guard through Miniflare's entry by its host name (`<name>.bench`, a route). The
// origin is a Node server (ORIGIN_URL); the key store is one KV namespace shared by every Worker.
import { Miniflare } from "miniflare";
import { resolve } from "node:path";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { buildWorker, ROOT } from "../lib/build-worker.mjs";
import { workerdChildren } from "./stack.mjs";

/**
 * @typedef {object} GuardIsolate
 * @property {string} name the Worker's name
 * @property {string} host the Host header that reaches it
 */

/**
 * @typedef {object} LocationsStack
 * @property {URL} url Miniflare's entry (every guard, by host)
 * @property {number | undefined} pid the workerd process
 * @property {(distance: number, mode: string) => GuardIsolate[]} guards the K guards of one distance and mode
 * @property {(distance: number) => Promise<{ wrapped: string[], delayMs: number }>} wrapped what the distance's usage Worker delays
 * @property {() => Promise<void>} dispose
 */

/**
 * @param {{
 *   isolates: number,
 *   distances: number[],
 *   modes: string[],
 *   originUrl: string,
 *   vars: Record<string, unknown>,
 *   limiterFailure?: string,
 *   verbose?: boolean,
 * }} options `vars`: bindings every guard gets on top of wrangler.toml's (tiers, admin token...);
 *   `limiterFailure`: the `limiter_failure` policy of every metered route (absent: wrangler.toml's)
 * @returns {Promise<LocationsStack>}
 */
export async function startLocationsStack({ isolates, distances, modes, originUrl, vars, limiterFailure, verbose }) {
	const [guardScript, usageScript] = await Promise.all([
		// Names of their own: `npm start`, the tests and other sections rebuild theirs meanwhile.
		buildWorker(process.env.BENCH_GUARD_ENTRY ?? "src/index.ts", "bench-locations-guard"),
		buildWorker("scripts/bench/locations-usage-worker.js", "bench-locations-usage"),
	]);
	const { workerOptions } = unstable_getMiniflareWorkerOptions(resolve(ROOT, "wrangler.toml"));
	const compatibility = {
		compatibilityDate: workerOptions.compatibilityDate ?? "2026-04-01",
		compatibilityFlags: workerOptions.compatibilityFlags ?? [],
	};
	const keys = workerOptions.kvNamespaces?.KEYS ?? { id: "edge-guard-keys-local" };
	const usageBinding = /** @type {{ className?: string, useSQLite?: boolean } | undefined} */ (workerOptions.durableObjects?.USAGE);
	const className = usageBinding?.className ?? "UsageObject";
	// wrangler.toml's variables less the origin's service binding and the console's assets: the
	// origin is ORIGIN_URL, and the admin API needs no files.
	const bindings = { ...workerOptions.bindings, ORIGIN_URL: originUrl, ...vars };
	if (limiterFailure !== undefined) {
		const routes = /** @type {any[]} */ (Array.isArray(bindings.ROUTES) ? bindings.ROUTES : []);
		if (!routes.some((route) => route.meter_tokens === true)) throw new Error("wrangler.toml's ROUTES has no metered route to set limiter_failure on");
		bindings.ROUTES = routes.map((route) => (route.meter_tokens === true ? { ...route, limiter_failure: limiterFailure } : route));
	}
	const usageName = (/** @type {number} */ distance) => `bench-usage-${distance}ms`;
	const guardName = (/** @type {number} */ distance, /** @type {string} */ mode, /** @type {number} */ i) => `bench-guard-${mode}-${distance}ms-${i}`;
	/** @type {any[]} */
	const workers = [];
	for (const distance of distances) {
		workers.push({
			...compatibility,
			name: usageName(distance),
			modules: true,
			scriptPath: usageScript,
			kvNamespaces: { KEYS: keys },
			durableObjects: { USAGE: { className, useSQLite: usageBinding?.useSQLite ?? true } },
			bindings: { ...bindings, BENCH_USAGE_DELAY_MS: distance },
		});
	}
	for (const distance of distances) {
		for (const mode of modes) {
			for (let i = 0; i < isolates; i++) {
				const name = guardName(distance, mode, i);
				workers.push({
					...compatibility,
					name,
					modules: true,
					scriptPath: guardScript,
					routes: [`${name}.bench/*`],
					kvNamespaces: { KEYS: keys },
					durableObjects: { USAGE: { className, scriptName: usageName(distance) } },
					bindings: { ...bindings, LIMITER_MODE: mode },
				});
			}
		}
	}
	const before = new Set(workerdChildren());
	const mf = new Miniflare({
		host: "127.0.0.1",
		port: 0,
		cf: false,
		// Every guard writes a log line per request to stdout: read and dropped, so a full pipe never
		// stalls the runtime. BENCH_VERBOSE=1 shows workerd's output (the guards' log lines too) on stderr.
		handleRuntimeStdio(stdout, stderr) {
			if (verbose) {
				stdout.pipe(process.stderr);
				stderr.pipe(process.stderr);
			} else {
				stdout.resume();
				stderr.resume();
			}
		},
		workers,
	});
	try {
		const url = await mf.ready;
		const pid = workerdChildren().find((candidate) => !before.has(candidate));
		return {
			url,
			pid,
			guards: (distance, mode) => Array.from({ length: isolates }, (_, i) => ({ name: guardName(distance, mode, i), host: `${guardName(distance, mode, i)}.bench` })),
			wrapped: async (distance) => {
				const worker = await mf.getWorker(usageName(distance));
				const response = await worker.fetch("http://usage.bench/__bench/wrapped");
				return /** @type {Promise<{ wrapped: string[], delayMs: number }>} */ (response.json());
			},
			dispose: () => mf.dispose(),
		};
	} catch (error) {
		await mf.dispose();
		throw error;
	}
}
