// The usage-limiter benchmark (issue 5): latency the limiter adds, usage-object calls per request
// in exact and lease mode, and what a burst far over a limit gets admitted. Three local stacks
// (guard + demo origin in workerd; limiter off, exact, lease) run side by side, fresh state each,
// loopback only; their latency runs are interleaved in rounds, the order rotated every round, so a
// goal is judged on the median of per-round differences with their spread shown.
import { startLocalStack } from "../lib/local-stack.mjs";
import { median, quantile, table } from "./report.mjs";
import { spread } from "./rounds.mjs";

const HEADERS = { "anthropic-version": "2023-06-01" };
const SEQUENTIAL = 400;
const WARMUP = 20;
const BURST = 100;

/**
 * @typedef {object} Stack
 * @property {string} name
 * @property {string} url
 * @property {() => number} calls the isolate's running count of usage-object calls (from its log lines)
 * @property {() => Promise<void>} dispose
 */

/**
 * @param {string} name
 * @param {{ vars?: Record<string, unknown>, omitVars?: string[] }} options
 * @returns {Promise<Stack>}
 */
async function start(name, options) {
	let stdout = "";
	const stack = await startLocalStack({
		port: 0,
		persist: false,
		quiet: true,
		...options,
		// Only the last counts matter; the log would otherwise grow with every request.
		onStdout: (text) => {
			stdout = (stdout + text).slice(-64 * 1024);
		},
	});
	const calls = () => Math.max(0, ...[...stdout.matchAll(/object_calls: (\d+)/g)].map((found) => Number(found[1])));
	return { name, url: stack.url.origin, calls, dispose: () => stack.dispose() };
}

/** @param {string} url @param {string} key */
async function get(url, key) {
	const started = performance.now();
	const response = await fetch(`${url}/v1/models`, { headers: { ...HEADERS, "x-api-key": key } });
	await response.arrayBuffer();
	return { status: response.status, ms: performance.now() - started };
}

/**
 * `n` sequential requests over one keep-alive connection; a status other than 200 is a failure.
 * @param {string} url @param {string} key @param {number} n
 * @returns {Promise<{ times: number[] } | { failure: string }>}
 */
async function sequential(url, key, n) {
	const times = [];
	for (let i = 0; i < n; i++) {
		const { status, ms } = await get(url, key);
		if (status !== 200) return { failure: `expected 200 from the hot organisation, got ${status}` };
		times.push(ms);
	}
	return { times };
}

/** @param {string} url */
async function burst(url) {
	const answers = await Promise.all(Array.from({ length: BURST }, () => get(url, "sk-demo-tight")));
	return answers.filter((answer) => answer.status === 200).length;
}

/**
 * Runs the limiter benchmark; returns its markdown and whether a run failed.
 * @param {{ rounds: number, progress: (message: string) => void }} options
 */
export async function limiterBench({ rounds, progress }) {
	/** @type {Stack[]} */
	const stacks = [];
	try {
		// One after another: each start bundles the guard to the same file.
		stacks.push(await start("off", { omitVars: ["TIERS"] }));
		stacks.push(await start("exact", { vars: { LIMITER_MODE: "exact" } }));
		stacks.push(await start("lease", { vars: { LIMITER_MODE: "lease" } }));
		/** @type {Record<string, { p50: number[], p99: number[], failure?: string }>} */
		const results = Object.fromEntries(stacks.map((stack) => [stack.name, { p50: [], p99: [] }]));
		for (const stack of stacks) await sequential(stack.url, "sk-demo-key", WARMUP);
		for (let round = 0; round < rounds; round++) {
			const order = stacks.map((_, i) => stacks[(i + round) % stacks.length]).filter((stack) => stack !== undefined);
			for (const stack of order) {
				const result = results[stack.name];
				if (!result || result.failure) continue;
				const run = await sequential(stack.url, "sk-demo-key", SEQUENTIAL);
				if ("failure" in run) {
					result.failure = `round ${round + 1}: ${run.failure}`;
					continue;
				}
				result.p50.push(quantile(run.times, 0.5));
				result.p99.push(quantile(run.times, 0.99));
			}
			progress(`limits round ${round + 1}/${rounds}: ${order.map((stack) => `${stack.name} p50 ${results[stack.name]?.p50.at(-1)?.toFixed(2) ?? "failed"} ms`).join(", ")}`);
		}
		const requests = WARMUP + rounds * SEQUENTIAL;
		const calls = Object.fromEntries(stacks.map((stack) => [stack.name, stack.calls() / requests]));
		const admitted = {
			exact: await burst(stacks[1]?.url ?? ""),
			lease: await burst(stacks[2]?.url ?? ""),
		};
		return report(results, calls, admitted, rounds);
	} finally {
		await Promise.all(stacks.map((stack) => stack.dispose().catch((error) => progress(`could not stop the ${stack.name} stack: ${error}`))));
	}
}

/**
 * @param {Record<string, { p50: number[], p99: number[], failure?: string }>} results
 * @param {Record<string, number>} calls
 * @param {{ exact: number, lease: number }} admitted
 * @param {number} rounds
 */
function report(results, calls, admitted, rounds) {
	const off = results.off;
	const failures = Object.entries(results).filter(([, result]) => result.failure);
	const failed = failures.length > 0;
	/** @param {string} mode @param {"p50" | "p99"} q */
	const added = (mode, q) => {
		const on = results[mode];
		if (!on || !off || on.failure || off.failure) return [];
		return on[q].map((value, i) => value - (off[q][i] ?? Number.NaN)).filter((value) => Number.isFinite(value));
	};
	const cell = (/** @type {number[]} */ values) => (values.length === 0 ? "failed" : spread(values, 2, " ms"));
	/** @param {string} mode */
	const p50Met = (mode) => {
		const values = added(mode, "p50");
		return values.length > 0 && median(values) < 1;
	};
	const exactCalls = calls.exact ?? Number.NaN;
	const leaseCalls = calls.lease ?? Number.NaN;
	const rows = [
		["latency added per admitted request, p50 (on − off, same round)", cell(added("exact", "p50")), cell(added("lease", "p50")), "< 1 ms (p50, median of rounds)", `exact ${p50Met("exact") ? "yes" : "**no**"}, lease ${p50Met("lease") ? "yes" : "**no**"}`],
		["latency added per admitted request, p99 (on − off, same round)", cell(added("exact", "p99")), cell(added("lease", "p99")), "—", "—"],
		["usage-object calls per request, hot organisation", exactCalls.toFixed(3), leaseCalls.toFixed(4), "lease < 0.1", leaseCalls < 0.1 ? "yes" : "**no**"],
		[`admitted of a burst of ${BURST} against a limit of 10 per minute`, String(admitted.exact), String(admitted.lease), "exact: 10 (overshoot 0); lease: within its bound", admitted.exact === 10 ? "yes" : "**no**"],
	];
	const ms = (/** @type {number[]} */ values) => (values.length === 0 ? "failed" : spread(values, 2, " ms"));
	const method = `Method: three local stacks side by side (guard + demo origin, bare workerd through Miniflare), fresh state each: the limiter off (no \`TIERS\`), exact mode and lease mode. Latency: ${SEQUENTIAL} sequential \`GET /v1/models\` with \`sk-demo-key\` (organisation on the generous tier) over one keep-alive connection per stack, after ${WARMUP} warm-ups, in ${rounds} rounds; in each round every stack runs once, the order rotated every round, and the added latency is the stack's p50 (p99) minus the off stack's in the same round. Cells: median of the rounds [min–max]; a goal is met only when the median meets it. Off: p50 ${ms(off?.p50 ?? [])}, p99 ${ms(off?.p99 ?? [])}. Calls per request: the isolate's own count of object calls (\`decisions.limit.object_calls\` in its log line) over the requests it admitted. Burst: ${BURST} concurrent requests with \`sk-demo-tight\` (10 requests per minute) after the rounds.`;
	const failure = failed ? `\n\n**FAILED**: ${failures.map(([name, result]) => `${name}: ${result.failure}`).join("; ")}` : "";
	return { text: `${method}\n\n${table(["Measure", "Exact mode", "Lease mode", "Goal", "Met?"], rows)}${failure}`, failed };
}
