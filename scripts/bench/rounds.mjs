// Interleaved rounds: every subject runs every phase of every request once per round, in an order
// rotated each round, so drift on a shared machine spreads evenly over the subjects. A subject whose
// run fails is not run again for that request; the failure is its result.
import { readFileSync } from "node:fs";
import { drive } from "./load.mjs";
import { median, quantile } from "./report.mjs";

/**
 * @typedef {object} Phase
 * @property {string} name e.g. "16" or "1"
 * @property {number} connections
 * @property {number} seconds
 * @property {number} [amount] a fixed-count run instead: this many responses (seconds is then unused)
 */

/**
 * @typedef {object} RunStats
 * @property {number} rps
 * @property {number} p50 ms
 * @property {number} p99 ms
 * @property {number} responses
 * @property {number} cpuUs the subject's process CPU time (user + system) per response, µs
 */

/**
 * @typedef {object} Series one subject, one request, one phase: a run per round, or its failure
 * @property {RunStats[]} runs
 * @property {string | undefined} failure
 */

/**
 * @typedef {object} Subject
 * @property {string} name
 * @property {URL} url
 * @property {boolean} requireRequestId
 * @property {number} [pid] its process (workerd, or a Node gateway), for CPU time per request
 * @property {Record<string, string>} [headers] added to every request sent to this subject (what it needs to route)
 */

/**
 * @param {{
 *   subjects: Subject[],
 *   requests: Array<{ name: string } & import("./load.mjs").LoadRequest>,
 *   phases: Phase[],
 *   rounds: number,
 *   warmupSeconds: number,
 *   progress: (message: string) => void,
 * }} options
 * @returns {Promise<Record<string, Record<string, Record<string, Series>>>>} request → subject → phase → series
 */
export async function interleavedRounds({ subjects, requests, phases, rounds, warmupSeconds, progress }) {
	/** @type {Record<string, Record<string, Record<string, Series>>>} */
	const results = {};
	for (const request of requests) {
		results[request.name] = Object.fromEntries(
			subjects.map((subject) => [subject.name, Object.fromEntries(phases.map((phase) => [phase.name, { runs: [], failure: undefined }]))]),
		);
	}
	/** @param {Subject} subject @param {typeof requests[number]} request */
	const failed = (subject, request) => phases.some((phase) => results[request.name]?.[subject.name]?.[phase.name]?.failure !== undefined);
	/** @param {Subject} subject @param {typeof requests[number]} request @param {string} failure */
	const fail = (subject, request, failure) => {
		for (const phase of phases) {
			const series = results[request.name]?.[subject.name]?.[phase.name];
			if (series && series.failure === undefined) series.failure = failure;
		}
	};

	/** @param {Subject} subject @param {typeof requests[number]} request */
	const sent = (subject, request) => (subject.headers === undefined ? request : { ...request, headers: { ...request.headers, ...subject.headers } });
	if (warmupSeconds > 0) {
		for (const request of requests) {
			for (const subject of subjects) {
				const run = await drive({ url: subject.url, request: sent(subject, request), connections: 16, seconds: warmupSeconds, requireRequestId: subject.requireRequestId });
				if (run.failures.length > 0) fail(subject, request, `warm-up: ${run.failures.join("; ")}`);
			}
		}
	}
	for (let round = 0; round < rounds; round++) {
		const order = subjects.map((_, i) => subjects[(i + round) % subjects.length]).filter((s) => s !== undefined);
		for (const request of requests) {
			for (const phase of phases) {
				for (const subject of order) {
					if (failed(subject, request)) continue;
					const cpuBefore = processCpuMs(subject.pid);
					const run = await drive({
						url: subject.url,
						request: sent(subject, request),
						connections: phase.connections,
						seconds: phase.seconds,
						amount: phase.amount,
						requireRequestId: subject.requireRequestId,
					});
					const cpuUs = ((processCpuMs(subject.pid) - cpuBefore) / run.responses) * 1000;
					const series = results[request.name]?.[subject.name]?.[phase.name];
					if (series === undefined) continue;
					if (run.failures.length > 0) {
						fail(subject, request, `round ${round + 1}, ${phase.connections} connection(s): ${run.failures.join("; ")}`);
						progress(`${request.name} ${subject.name}: FAILED ${run.failures.join("; ")}`);
						continue;
					}
					const latencies = [...run.latencies];
					series.runs.push({ rps: run.rps, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), responses: run.responses, cpuUs });
				}
				const line = order
					.map((subject) => {
						const last = results[request.name]?.[subject.name]?.[phase.name]?.runs.at(-1);
						return `${subject.name} ${last ? `${last.rps.toFixed(0)}/s p50 ${last.p50.toFixed(2)} ms` : "failed"}`;
					})
					.join(", ");
				progress(`round ${round + 1}/${rounds} ${request.name} ×${phase.connections}: ${line}`);
			}
		}
	}
	return results;
}

/**
 * User plus system CPU time of a process so far, ms (Linux /proc, clock ticks of 10 ms); NaN when
 * unknown.
 * @param {number | undefined} pid
 */
export function processCpuMs(pid) {
	if (pid === undefined) return Number.NaN;
	try {
		const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
		const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
		return (Number(fields[11]) + Number(fields[12])) * 10;
	} catch {
		return Number.NaN;
	}
}

/**
 * Per-round values of `pick(subject's run) ⊕ pick(baseline's run)` over the rounds both completed.
 * @param {Series | undefined} subject
 * @param {Series | undefined} baseline
 * @param {(run: RunStats, base: RunStats) => number} combine
 */
export function perRound(subject, baseline, combine) {
	if (!subject || !baseline || subject.failure || baseline.failure) return [];
	const n = Math.min(subject.runs.length, baseline.runs.length);
	const values = [];
	for (let i = 0; i < n; i++) {
		const run = subject.runs[i];
		const base = baseline.runs[i];
		if (run && base) values.push(combine(run, base));
	}
	return values;
}

/**
 * "median [min–max]" of some values, with `digits` decimals and a unit.
 * @param {number[]} values
 * @param {number} digits
 * @param {string} [unit]
 */
export function spread(values, digits, unit = "") {
	if (values.length === 0) return "—";
	const f = (/** @type {number} */ value) => value.toFixed(digits);
	return `${f(median(values))}${unit} [${f(Math.min(...values))}–${f(Math.max(...values))}]`;
}
