// One benchmark subject: a front Worker (bare, hono or the guard) and its own sink origin, alone in
// a fresh workerd process started through Miniflare, so each one's memory can be read on its own.
import { Miniflare } from "miniflare";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { buildWorker, ROOT } from "../lib/build-worker.mjs";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const SINK = "bench-sink";
/** The last this many characters of workerd's output are kept (enough for a few log lines). */
const OUTPUT_KEEP = 256 * 1024;

/**
 * `guard-untrusting`: the guard with `TRUST_DECLARED_LENGTH = false` (every body through the counting
 * pump, as for callers that could lie about a length); the variable is ignored by a guard without it.
 * @typedef {"bare" | "hono" | "guard" | "guard-untrusting"} Kind
 */

/**
 * Limits no benchmark comes near (the token-bucket maximum), and no acceleration limit: the body
 * benchmarks measure caps, not rate limits, and a refusal would fail the run. (A 32 MiB body alone
 * is estimated at 8 million input tokens, and the bench sends a few dozen in a minute.)
 */
export const UNLIMITED_TIERS = {
	default: { requests_per_minute: 10_000_000_000, input_tokens_per_minute: 10_000_000_000, output_tokens_per_minute: 10_000_000_000 },
};

/** The API key the bench presents; seeded into the guard's key store when it has one (KEYS). */
export const BENCH_KEY = "sk-guard-BenchKeyWithEveryScope000000000000000";

/**
 * The scripts and configuration every subject needs, built once.
 * @returns {Promise<Prepared>}
 */
export async function prepareSubjects() {
	const [guard, hono] = await Promise.all([
		// Not ".build/edge-guard.mjs": `npm start` and the e2e tests rebuild that file, and a subject
		// started later in the run would pick up whatever they last wrote.
		buildWorker(process.env.BENCH_GUARD_ENTRY ?? "src/index.ts", "bench-edge-guard"),
		buildWorker("scripts/bench/hono-worker.ts", "bench-hono"),
	]);
	const { workerOptions } = unstable_getMiniflareWorkerOptions(resolve(ROOT, "wrangler.toml"));
	const routes = postRoutes(workerOptions.bindings?.ROUTES);
	return {
		scripts: { guard, hono, bare: resolve(HERE, "bare-worker.js"), sink: resolve(HERE, "sink-origin.js") },
		guardOptions: workerOptions,
		caps: Object.fromEntries(routes.map((route) => [route.path, route.max_body_bytes])),
		// Only an explicit setting counts: the guard's default for the 10-minute rule is off.
		inspects: (path) => routes.find((route) => route.path === path)?.refuse_long_non_streaming === true,
		meters: (path) => {
			const route = routes.find((candidate) => candidate.path === path);
			return route?.meter_tokens === true || route?.meter_batches === true;
		},
		headersFor: (path) => requestHeaders(routes.find((route) => route.path === path)),
		compatibilityDate: workerOptions.compatibilityDate ?? "2026-04-01",
	};
}

/**
 * @typedef {object} Prepared
 * @property {Record<"bare" | "hono" | "guard" | "sink", string>} scripts
 * @property {Record<string, any>} guardOptions
 * @property {Record<string, number>} caps POST path -> cap in bytes, from the guard's route table
 * @property {(path: string) => Record<string, string>} headersFor what a real client of the route sends
 * @property {(path: string) => boolean} inspects whether the route's configuration has the guard read inside its body (the 10-minute rule)
 * @property {(path: string) => boolean} meters whether the route meters tokens or batches: a body too long for the admission peek is read whole for its claim (issue 19)
 * @property {string} compatibilityDate
 */

/**
 * The POST routes with a body from the guard's route table, for Hono to apply the same caps and
 * the client to send what each route admits.
 * @param {unknown} routes
 * @returns {Array<{ path: string, max_body_bytes: number, content_type?: string, refuse_long_non_streaming?: boolean, meter_tokens?: boolean, meter_batches?: boolean }>}
 */
function postRoutes(routes) {
	const all = /** @type {any[]} */ (Array.isArray(routes) ? routes : []);
	return all.filter((route) => route.methods?.includes("POST") && route.max_body_bytes > 0 && !route.path.includes(":"));
}

/**
 * The same headers go to all three Workers; only the guard reads them (key, version, media type).
 * @param {{ content_type?: string } | undefined} route
 */
function requestHeaders(route) {
	const type = route?.content_type ?? "application/octet-stream";
	return {
		"content-type": type === "multipart/form-data" ? `${type}; boundary=bench` : type,
		"x-api-key": BENCH_KEY,
		"anthropic-version": "2023-06-01",
	};
}

/**
 * @typedef {object} Subject
 * @property {Kind} kind
 * @property {URL} url
 * @property {number} pid the workerd process
 * @property {(path: string) => Record<string, string>} headersFor the request headers for a path
 * @property {() => string} output workerd's stdout and stderr since the last `clearOutput()`
 * @property {() => void} clearOutput
 * @property {() => Promise<SinkStats>} sinkStats
 * @property {() => Promise<void>} dispose
 */

/**
 * @typedef {{ seq: number, uploads: Array<{ seq: number, method: string, path: string, declared: string | null, bytes: number, outcome: "reading" | "complete" | "failed", failure?: string }> }} SinkStats
 */

/**
 * Starts `kind` in front of a sink, in its own workerd on a free loopback port.
 * @param {Kind} kind
 * @param {Prepared} prepared
 * @returns {Promise<Subject>}
 */
export async function startSubject(kind, prepared) {
	const before = new Set(workerdChildren());
	let output = "";
	/** @param {import("node:stream").Readable} stream */
	const capture = (stream) =>
		stream.on("data", (chunk) => {
			output = (output + chunk.toString()).slice(-OUTPUT_KEEP);
		});
	const mf = new Miniflare({
		host: "127.0.0.1",
		port: 0,
		cf: false,
		handleRuntimeStdio(stdout, stderr) {
			capture(stdout);
			capture(stderr);
		},
		workers: [frontWorker(kind, prepared), sinkWorker(prepared)],
	});
	try {
		const url = await mf.ready;
		const pid = workerdChildren().find((candidate) => !before.has(candidate));
		if (pid === undefined) throw new Error(`could not find the workerd process of the ${kind} subject`);
		if (kind.startsWith("guard") && prepared.guardOptions.kvNamespaces?.KEYS) await seedKey(mf, prepared);
		const sink = await mf.getWorker(SINK);
		return {
			kind,
			url,
			pid,
			headersFor: prepared.headersFor,
			output: () => output,
			clearOutput: () => {
				output = "";
			},
			sinkStats: async () => /** @type {Promise<SinkStats>} */ ((await sink.fetch("http://sink/__sink/stats")).json()),
			dispose: () => mf.dispose(),
		};
	} catch (error) {
		await mf.dispose();
		throw error;
	}
}

/**
 * @param {Kind} kind
 * @param {Prepared} prepared
 */
function frontWorker(kind, { scripts, guardOptions, caps, compatibilityDate }) {
	if (kind === "guard" || kind === "guard-untrusting") {
		const bindings = { ...guardOptions.bindings, TIERS: UNLIMITED_TIERS, ORG_TIERS: {}, ...(kind === "guard" ? {} : { TRUST_DECLARED_LENGTH: false }) };
		// Without Miniflare's asset router in front of the guard, as the local stack runs it (small-stack.mjs says why).
		const { assets: _assetRouter, ...options } = guardOptions;
		return { ...options, modules: true, scriptPath: scripts.guard, serviceBindings: { ORIGIN: SINK }, name: "edge-guard", bindings };
	}
	const common = { modules: true, scriptPath: scripts[kind], serviceBindings: { ORIGIN: SINK } };
	if (kind === "hono") return { ...common, name: "bench-hono", compatibilityDate, bindings: { CAPS: caps } };
	return { ...common, name: "bench-bare", compatibilityDate };
}

/**
 * Stores the bench's key in the guard's key store as the key tooling would: the record under its
 * SHA-256, with every route group as a scope.
 * @param {Miniflare} mf
 * @param {Prepared} prepared
 */
async function seedKey(mf, { guardOptions }) {
	const kv = await mf.getKVNamespace("KEYS", "edge-guard");
	const hash = createHash("sha256").update(BENCH_KEY).digest("hex");
	const scopes = [...new Set((guardOptions.bindings?.ROUTES ?? []).map((/** @type {any} */ route) => route.group ?? ""))];
	const record = { hash, id: "key_bench", org_id: "org_bench", workspace_id: null, name: "bench", scopes, status: "active", created_at: new Date().toISOString() };
	await kv.put(`key:${hash}`, JSON.stringify(record));
	await kv.put("id:key_bench", hash);
}

/** @param {Prepared} prepared */
function sinkWorker({ scripts, compatibilityDate }) {
	return { name: SINK, modules: true, scriptPath: scripts.sink, compatibilityDate, compatibilityFlags: ["enable_request_signal"] };
}

/** PIDs of this process's children named `workerd` (what Miniflare spawns). */
export function workerdChildren() {
	/** @type {number[]} */
	const found = [];
	for (const name of readdirSync("/proc")) {
		if (!/^\d+$/.test(name)) continue;
		let stat;
		try {
			stat = readFileSync(`/proc/${name}/stat`, "utf8");
		} catch {
			continue; // exited meanwhile
		}
		// comm is in parentheses and may hold spaces; ppid is the second field after it.
		const close = stat.lastIndexOf(")");
		const comm = stat.slice(stat.indexOf("(") + 1, close);
		const ppid = Number(stat.slice(close + 2).split(" ")[1]);
		if (ppid === process.pid && comm === "workerd") found.push(Number(name));
	}
	return found;
}
