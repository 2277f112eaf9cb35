// Subjects of the small-request benchmark: a front Worker (a bare pass-through, or the guard in one
// limiter mode) and the Messages-shaped origin behind it, alone in a fresh workerd process started
// through Miniflare. The guard gets wrangler.toml's configuration with limits too high to refuse.
// With `originUrl`, the front reaches an origin by URL instead (one origin shared by several fronts,
// started alone in its own workerd by `startSmallOrigin`), and its workerd holds the front only.
import { Miniflare } from "miniflare";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { buildWorker, ROOT } from "../lib/build-worker.mjs";
import { DEMO_KEYS } from "../lib/demo-keys.mjs";
import { seedKeys } from "../lib/local-stack.mjs";
import { UNLIMITED_TIERS, workerdChildren } from "./stack.mjs";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const ORIGIN = "bench-messages-origin";

/** The demo key the load presents (every scope, organisation `org_demo`). */
export const DEMO_KEY = "sk-demo-key";

/**
 * @typedef {object} SmallSubjectSpec
 * @property {string} name shown in tables
 * @property {"bare" | "guard"} front
 * @property {"exact" | "lease"} [mode] the guard's LIMITER_MODE
 * @property {number} [usageDelayMs] wraps the usage object so each of its calls waits this long first
 * @property {Record<string, unknown>} [vars] more variables for the guard
 * @property {Record<string, unknown>} [workerOptions] more Miniflare options for the front Worker (experiments: flags, bindings; `assets` puts Miniflare's asset router back in front of the guard)
 * @property {string} [originUrl] reach the origin by this URL (no service binding; the guard's ORIGIN_URL), not a copy of it in the same workerd
 */

/**
 * @typedef {object} SmallPrepared
 * @property {string} guard the guard's bundle
 * @property {string} distant the bench entry whose usage object waits before every call
 * @property {Record<string, any>} guardOptions wrangler.toml's Miniflare options
 */

/**
 * Builds the bundles once. BENCH_GUARD_ENTRY bundles another guard entry (a prototype) instead of
 * src/index.ts.
 * @returns {Promise<SmallPrepared>}
 */
export async function prepareSmall() {
	const [guard, distant] = await Promise.all([
		buildWorker(process.env.BENCH_GUARD_ENTRY ?? "src/index.ts", "bench-small-guard"),
		buildWorker("scripts/bench/distant-usage-worker.js", "bench-distant-usage"),
	]);
	const { workerOptions } = unstable_getMiniflareWorkerOptions(resolve(ROOT, "wrangler.toml"));
	return { guard, distant, guardOptions: workerOptions };
}

/**
 * @typedef {object} SmallSubject
 * @property {SmallSubjectSpec} spec
 * @property {URL} url
 * @property {Miniflare} mf
 * @property {number | undefined} pid the workerd process
 * @property {() => Promise<void>} dispose
 */

/**
 * workerd's output for a bench subject: stdout (the guard's log lines) read and dropped, so a full
 * pipe never stalls the runtime; stderr too, unless BENCH_VERBOSE=1 shows workerd's own errors.
 * @param {import("node:stream").Readable} stdout
 * @param {import("node:stream").Readable} stderr
 */
function drainStdio(stdout, stderr) {
	stdout.resume();
	if (process.env.BENCH_VERBOSE) stderr.pipe(process.stderr);
	else stderr.resume();
}

/**
 * Starts one subject in its own workerd on a free loopback port. `inspectorPort` opens workerd's
 * DevTools inspector (for the profiler).
 * @param {SmallSubjectSpec} spec
 * @param {SmallPrepared} prepared
 * @param {{ inspectorPort?: number }} [options]
 * @returns {Promise<SmallSubject>}
 */
export async function startSmallSubject(spec, prepared, options = {}) {
	const before = new Set(workerdChildren());
	const mf = new Miniflare({
		host: "127.0.0.1",
		port: 0,
		cf: false,
		...(options.inspectorPort === undefined ? {} : { inspectorPort: options.inspectorPort }),
		// The guard's request log line goes to workerd's stdout, as it would be written deployed; it is
		// read and dropped here so a full pipe never stalls the runtime.
		handleRuntimeStdio: drainStdio,
		workers: spec.originUrl === undefined ? [frontWorker(spec, prepared), originWorker(prepared)] : [frontWorker(spec, prepared)],
	});
	try {
		const url = await mf.ready;
		const pid = workerdChildren().find((candidate) => !before.has(candidate));
		if (spec.front === "guard") await seedKeys(mf, DEMO_KEYS.filter((entry) => entry.key === DEMO_KEY));
		return { spec, url, mf, pid, dispose: () => mf.dispose() };
	} catch (error) {
		await mf.dispose();
		throw error;
	}
}

/**
 * @param {SmallSubjectSpec} spec
 * @param {SmallPrepared} prepared
 */
function frontWorker(spec, { guard, distant, guardOptions }) {
	const compatibilityDate = guardOptions.compatibilityDate ?? "2026-04-01";
	const byUrl = spec.originUrl !== undefined;
	if (spec.front === "bare") {
		const reach = byUrl ? { scriptPath: resolve(HERE, "bare-url-worker.js"), bindings: { ORIGIN_URL: spec.originUrl } } : { scriptPath: resolve(HERE, "bare-worker.js"), serviceBindings: { ORIGIN } };
		return { name: "bench-bare", modules: true, ...reach, compatibilityDate, ...spec.workerOptions };
	}
	const delayed = spec.usageDelayMs !== undefined;
	// Without Miniflare's asset router, as the local stack runs the guard (scripts/lib/local-stack.mjs):
	// it is a Worker of its own in front of the guard on every request, which deployed is Cloudflare's
	// routing, not the guard's CPU time. A subject can put it back (`workerOptions.assets`).
	const { assets: _assetRouter, ...options } = guardOptions;
	return {
		...options,
		name: "edge-guard",
		modules: true,
		scriptPath: delayed ? distant : guard,
		serviceBindings: byUrl ? {} : { ORIGIN },
		bindings: {
			...guardOptions.bindings,
			...(byUrl ? { ORIGIN_URL: spec.originUrl } : {}),
			TIERS: UNLIMITED_TIERS,
			ORG_TIERS: {},
			LIMITER_MODE: spec.mode ?? "exact",
			...(delayed ? { BENCH_USAGE_DELAY_MS: spec.usageDelayMs } : {}),
			...spec.vars,
		},
		...spec.workerOptions,
	};
}

/**
 * The Messages-shaped origin alone in its own workerd on a free loopback port, for fronts that
 * reach it by URL (`originUrl`). `pid`: its workerd process.
 * @param {SmallPrepared} prepared
 * @returns {Promise<{ url: URL, pid: number | undefined, dispose: () => Promise<void> }>}
 */
export async function startSmallOrigin(prepared) {
	const before = new Set(workerdChildren());
	const mf = new Miniflare({
		host: "127.0.0.1",
		port: 0,
		cf: false,
		handleRuntimeStdio: drainStdio,
		workers: [originWorker(prepared)],
	});
	try {
		const url = await mf.ready;
		return { url, pid: workerdChildren().find((candidate) => !before.has(candidate)), dispose: () => mf.dispose() };
	} catch (error) {
		await mf.dispose();
		throw error;
	}
}

/** @param {SmallPrepared} prepared */
function originWorker({ guardOptions }) {
	return { name: ORIGIN, modules: true, scriptPath: resolve(HERE, "messages-origin.js"), compatibilityDate: guardOptions.compatibilityDate ?? "2026-04-01" };
}
