// The usage-limiter benchmark (issue 5): latency the limiter adds, usage-object calls per request
// in exact and lease mode, and what a burst far over a limit gets admitted. Runs the local stack
// (guard + demo origin in workerd), fresh state each time, loopback only.
import { startLocalStack } from "../lib/local-stack.mjs";
import { quantile, table } from "./report.mjs";

const HEADERS = { "anthropic-version": "2023-06-01" };
const SEQUENTIAL = 400;
const BURST = 100;

/**
 * Starts a stack, runs `fn` against its URL, and always stops it.
 * @template T
 * @param {{ vars?: Record<string, unknown>, omitVars?: string[] }} options
 * @param {(url: string, calls: () => number) => Promise<T>} fn
 */
async function withStack(options, fn) {
	let stdout = "";
	const stack = await startLocalStack({ port: 0, persist: false, quiet: true, ...options, onStdout: (text) => (stdout += text) });
	try {
		const calls = () => Math.max(0, ...[...stdout.matchAll(/object_calls: (\d+)/g)].map((found) => Number(found[1])));
		return await fn(stack.url.origin, calls);
	} finally {
		await stack.dispose();
	}
}

/** @param {string} url @param {string} key */
async function get(url, key) {
	const started = performance.now();
	const response = await fetch(`${url}/v1/models`, { headers: { ...HEADERS, "x-api-key": key } });
	await response.arrayBuffer();
	return { status: response.status, ms: performance.now() - started };
}

/** @param {string} url @param {string} key @param {number} n */
async function sequential(url, key, n) {
	for (let i = 0; i < 20; i++) await get(url, key);
	const times = [];
	for (let i = 0; i < n; i++) {
		const { status, ms } = await get(url, key);
		if (status !== 200) throw new Error(`expected 200 from the hot organisation, got ${status}`);
		times.push(ms);
	}
	return times;
}

/** @param {string} url */
async function burst(url) {
	const answers = await Promise.all(Array.from({ length: BURST }, () => get(url, "sk-demo-tight")));
	return answers.filter((answer) => answer.status === 200).length;
}

/** Runs the limiter benchmark and returns its markdown. */
export async function limiterBench() {
	const off = await withStack({ omitVars: ["TIERS"] }, (url) => sequential(url, "sk-demo-key", SEQUENTIAL));
	const exact = await withStack({ vars: { LIMITER_MODE: "exact" } }, async (url, calls) => {
		const times = await sequential(url, "sk-demo-key", SEQUENTIAL);
		return { times, calls: calls() / (SEQUENTIAL + 20), admitted: await burst(url) };
	});
	const lease = await withStack({ vars: { LIMITER_MODE: "lease" } }, async (url, calls) => {
		const times = await sequential(url, "sk-demo-key", SEQUENTIAL);
		return { times, calls: calls() / (SEQUENTIAL + 20), admitted: await burst(url) };
	});
	const ms = (/** @type {number} */ value) => `${value.toFixed(2)} ms`;
	const p = (/** @type {number[]} */ times, /** @type {number} */ q) => quantile(times, q);
	const added = (/** @type {number[]} */ times, /** @type {number} */ q) => p(times, q) - p(off, q);
	const rows = [
		["latency added per admitted request, p50 (on − off)", ms(added(exact.times, 0.5)), ms(added(lease.times, 0.5)), "< 1 ms (p50)", added(exact.times, 0.5) < 1 ? "yes" : "**no**"],
		["latency added per admitted request, p99 (on − off)", ms(added(exact.times, 0.99)), ms(added(lease.times, 0.99)), "—", "—"],
		["usage-object calls per request, hot organisation", exact.calls.toFixed(3), lease.calls.toFixed(4), "lease < 0.1", lease.calls < 0.1 ? "yes" : "**no**"],
		[`admitted of a burst of ${BURST} against a limit of 10 per minute`, String(exact.admitted), String(lease.admitted), "exact: 10 (overshoot 0); lease: within its bound", exact.admitted === 10 ? "yes" : "**no**"],
	];
	const method = `Method: the local stack (guard + demo origin, bare workerd through Miniflare), fresh state per run. Latency: ${SEQUENTIAL} sequential \`GET /v1/models\` with \`sk-demo-key\` (organisation on the generous tier) after 20 warm-ups, over one keep-alive connection, with the limiter off (no \`TIERS\`: p50 ${ms(p(off, 0.5))}, p99 ${ms(p(off, 0.99))}) and on; calls per request from the isolate's own count of object calls (\`decisions.limit.object_calls\` in its log line) over the requests it admitted. Burst: ${BURST} concurrent requests with \`sk-demo-tight\` (10 requests per minute) after the run above.`;
	return `${method}\n\n${table(["Measure", "Exact mode", "Lease mode", "Goal", "Met?"], rows)}`;
}
