// The interposed-stream experiment (issue 13): on this runtime, what does putting any stream
// between `request.body` and the origin fetch cost an upload? Minimal Workers
// (scripts/bench/interposed-worker.js), each alone in its own workerd in front of its own
// byte-counting sink, upload Content-Length bodies of 32 MiB and 256 MiB; speed is a ratio to the
// bare pass-through in the same run. Runnable alone: `npm run bench -- interposed`.
import { Miniflare } from "miniflare";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { upload } from "./client.mjs";
import { median, mibPerSecond, table } from "./report.mjs";
import { processCpuMs } from "./rounds.mjs";
import { workerdChildren } from "./stack.mjs";

export const INTERPOSED_SECTION = "## Interposed streams (issue 13)";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const MIB = 1024 * 1024;
const MODES = [
	{ mode: "bare", label: "bare: `env.ORIGIN.fetch(request)`" },
	{ mode: "new-headers", label: "untouched `request.body`, new headers" },
	{ mode: "js-transform", label: "JS `TransformStream` (`pipeThrough`)" },
	{ mode: "identity", label: "`IdentityTransformStream` (`pipeTo`)" },
	{ mode: "fixed-length", label: "`FixedLengthStream` (`pipeTo`)" },
	{ mode: "pump", label: "JS pump: BYOB 1 MiB slices into a `FixedLengthStream`" },
	{ mode: "pump-scan", label: "JS pump, each slice searched (`indexOf`)" },
	{ mode: "tee-scan", label: "`tee()`: untouched branch to the origin, the other read and searched in JS" },
];
const CASES = [
	{ label: "32 MiB", bytes: 32 * MIB, reps: 9 },
	{ label: "256 MiB", bytes: 256 * MIB, reps: 5 },
];

/**
 * @param {string} mode
 * @returns {Promise<{ mode: string, url: URL, pid: number | undefined, dispose: () => Promise<void> }>}
 */
async function start(mode) {
	const before = new Set(workerdChildren());
	const mf = new Miniflare({
		host: "127.0.0.1",
		port: 0,
		cf: false,
		workers: [
			{ name: "interposed", modules: true, scriptPath: resolve(HERE, "interposed-worker.js"), compatibilityDate: "2026-04-01", bindings: { MODE: mode }, serviceBindings: { ORIGIN: "sink" } },
			{ name: "sink", modules: true, scriptPath: resolve(HERE, "sink-origin.js"), compatibilityDate: "2026-04-01" },
		],
	});
	try {
		const url = await mf.ready;
		const pid = workerdChildren().find((candidate) => !before.has(candidate));
		return { mode, url, pid, dispose: () => mf.dispose() };
	} catch (error) {
		await mf.dispose();
		throw error;
	}
}

/**
 * Runs the experiment; returns its markdown and whether a run failed.
 * @param {{ progress: (message: string) => void, live?: Set<{ dispose: () => Promise<void> }>, signal?: AbortSignal }} options
 */
export async function interposedBench({ progress, live, signal }) {
	/** @type {Awaited<ReturnType<typeof start>>[]} */
	const subjects = [];
	try {
		for (const { mode } of MODES) {
			const subject = await start(mode);
			subjects.push(subject);
			live?.add(subject);
		}
		let failed = false;
		const rows = [];
		for (const testCase of CASES) {
			/** @type {Record<string, { ms: number[], cpuMs: number[], failure?: string }>} */
			const runs = Object.fromEntries(MODES.map(({ mode }) => [mode, { ms: [], cpuMs: [] }]));
			for (let rep = -1; rep < testCase.reps; rep++) {
				const order = subjects.map((_, i) => subjects[(i + Math.max(rep, 0)) % subjects.length]);
				for (const subject of order) {
					const run = subject ? runs[subject.mode] : undefined;
					if (!subject || !run || run.failure) continue;
					const cpuBefore = processCpuMs(subject.pid);
					const result = await upload({ url: subject.url, path: "/upload", headers: { "content-type": "application/octet-stream" }, bytes: testCase.bytes, declareLength: true, timeoutMs: 60_000, signal });
					let answer;
					try {
						answer = JSON.parse(result.body);
					} catch {
						answer = undefined;
					}
					if (result.error || result.status !== 200 || answer?.bytes !== testCase.bytes) {
						run.failure = result.error ?? `${result.status}: sink read ${answer?.bytes} of ${testCase.bytes} bytes`;
						failed = true;
					} else if (rep >= 0) {
						run.ms.push(result.ms);
						run.cpuMs.push(processCpuMs(subject.pid) - cpuBefore);
					}
				}
			}
			progress(`interposed ${testCase.label}: ${MODES.map(({ mode }) => `${mode} ${runs[mode]?.failure ? "failed" : `${median(runs[mode]?.ms ?? []).toFixed(0)} ms`}`).join(", ")}`);
			for (const { mode, label } of MODES) {
				const run = runs[mode];
				if (!run || run.failure) {
					rows.push([testCase.label, label, `**FAILED**: ${run?.failure ?? "not run"}`, "—", "—", "—"]);
					continue;
				}
				const ms = median(run.ms);
				// The bare Worker's time over this one's in each round (they ran next to each other), median.
				const ratio = median(run.ms.map((value, i) => (runs.bare?.ms[i] ?? Number.NaN) / value).filter((value) => Number.isFinite(value)));
				rows.push([testCase.label, label, `${ratio.toFixed(2)}×`, mibPerSecond(testCase.bytes, ms), `${ms.toFixed(0)} ms [${Math.min(...run.ms).toFixed(0)}–${Math.max(...run.ms).toFixed(0)}]`, `${median(run.cpuMs).toFixed(0)} ms`]);
			}
		}
		const method = `Method: ${MODES.length} minimal Workers (\`scripts/bench/interposed-worker.js\`, compatibility date 2026-04-01), each alone in its own workerd through Miniflare with its own byte-counting sink (\`scripts/bench/sink-origin.js\`) behind the service binding \`ORIGIN\`; they differ only in what stands between \`request.body\` and the origin fetch, and none counts or checks anything (the last three read the body in JavaScript: what a guard that must look at every byte pays at least, issue 20). The client is Node's \`node:http\` over loopback, one connection per upload, a Content-Length body written from one reused 1 MiB buffer; after one warm-up round, ${CASES.map((c) => `${c.reps} rounds (${c.label})`).join(" or ")} in rotating order; median time from the request's start to the answer's end [fastest–slowest]; every upload checks that the sink read every byte. Speed: the bare Worker's time over this Worker's in the same round, median of the rounds. CPU: the Worker's workerd process (front Worker and sink together) user + system time during the upload, from /proc in 10 ms ticks. The wall-time ratio of the native streams depends on whether a core is free for the extra work they put on the Worker's thread (it moved between about 0.5× and 1.0× from run to run on this shared 2-core machine); the CPU column is the cost that does not move.`;
		return { text: `${method}\n\n${table(["Body (Content-Length)", "Worker", "ratio to bare", "throughput at the median", "median time [min–max]", "workerd CPU per upload, median"], rows)}\n`, failed };
	} finally {
		await Promise.all(
			subjects.map((subject) => {
				live?.delete(subject);
				return subject.dispose().catch((error) => progress(`could not stop ${subject.mode}: ${error}`));
			}),
		);
	}
}
