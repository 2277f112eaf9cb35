#!/usr/bin/env node
// `npm run bench`: the body-cap benchmarks (issue 3). Three Workers, each in its own workerd
// through Miniflare in front of its own byte-counting sink: a bare pass-through (the physical
// ceiling), Hono's bodyLimit (what an author would pick instead) and the guard. Prints one markdown
// table per group and rewrites the "## Body caps (issue 3)" section of BENCHMARKS.md.
import { execFileSync } from "node:child_process";
import { cpus, loadavg, totalmem } from "node:os";
import { resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { ROOT } from "./lib/build-worker.mjs";
import { timeEarlyAnswer, upload } from "./bench/client.mjs";
import { readMemory, sampleRss } from "./bench/memory.mjs";
import { median, mib, mibPerSecond, quantile, table, writeSection, yesNo } from "./bench/report.mjs";
import { limiterBench } from "./bench/limits.mjs";
import { prepareSubjects, startSubject } from "./bench/stack.mjs";

process.env.WRANGLER_SEND_METRICS = "false";

const MIB = 1024 * 1024;
/** @type {import("./bench/stack.mjs").Kind[]} */
const KINDS = ["bare", "hono", "guard"];
const LABEL = { bare: "Bare pass-through", hono: "Hono bodyLimit", guard: "Guard" };
/** The whole run is cut short after this; everything it started is still stopped. */
const BUDGET_MS = 8 * 60_000;
/** A ballooning run (Hono buffering 500 MB) is stopped once workerd grows this much. */
const MEMORY_EXPOSURE = 2 * 1024 * MIB;
const SECTION = "## Body caps (issue 3)";
const LIMITS_SECTION = "## Usage limits (issue 5)";

const budget = new AbortController();
/** @type {Set<import("./bench/stack.mjs").Subject>} */
const live = new Set();

/**
 * Runs `fn` with fresh subjects of the given kinds, stopping them whatever happens.
 * @template T
 * @param {import("./bench/stack.mjs").Kind[]} kinds
 * @param {import("./bench/stack.mjs").Prepared} prepared
 * @param {(subjects: Record<string, import("./bench/stack.mjs").Subject>) => Promise<T>} fn
 * @returns {Promise<T>}
 */
async function withSubjects(kinds, prepared, fn) {
	/** @type {Record<string, import("./bench/stack.mjs").Subject>} */
	const subjects = {};
	try {
		for (const kind of kinds) {
			const subject = await startSubject(kind, prepared);
			live.add(subject);
			subjects[kind] = subject;
		}
		return await fn(subjects);
	} finally {
		await Promise.all(Object.values(subjects).map(stop));
	}
}

/** @param {import("./bench/stack.mjs").Subject} subject */
async function stop(subject) {
	live.delete(subject);
	await subject.dispose().catch((error) => progress(`could not stop ${subject.kind}: ${error}`));
}

/** @param {string} message */
function progress(message) {
	process.stderr.write(`[bench ${((performance.now() - startedAt) / 1000).toFixed(0).padStart(3)} s] ${message}\n`);
}

/** Generous, but bounded: at least 10 MiB/s. */
function timeoutFor(/** @type {number} */ bytes) {
	return 20_000 + (bytes / MIB) * 100;
}

/**
 * Uploads and checks that the sink answered having read exactly the bytes sent; returns the time,
 * or why it failed.
 * @param {import("./bench/stack.mjs").Subject} subject
 * @param {{ path: string, bytes: number, declareLength: boolean, signal?: AbortSignal }} body
 * @returns {Promise<{ ms: number } | { failure: string }>}
 */
async function forward(subject, { path, bytes, declareLength, signal }) {
	const result = await upload({ url: subject.url, path, headers: subject.headersFor(path), bytes, declareLength, timeoutMs: timeoutFor(bytes), signal: signal ?? budget.signal });
	if (result.error) return { failure: `${result.error} after ${(result.ms / 1000).toFixed(1)} s, ${mib(result.sent)} sent` };
	if (result.status !== 200) return { failure: `${result.status} ${result.body.slice(0, 120)}` };
	const answer = parseJson(result.body);
	if (answer?.bytes !== bytes || answer?.complete !== true || result.sent !== bytes) {
		return { failure: `sink read ${answer?.bytes} of ${bytes} bytes (client sent ${result.sent})` };
	}
	return { ms: result.ms };
}

/** @param {string} text */
function parseJson(text) {
	try {
		return JSON.parse(text);
	} catch {
		return undefined;
	}
}

// A. Forwarding throughput ---------------------------------------------------------------------

const THROUGHPUT_CASES = [
	// Many rounds for 32 MiB: a bare run takes ~15 ms, where scheduling noise on 2 cores is large.
	{ label: "32 MiB", path: "/v1/messages", bytes: 32 * MIB, reps: 15 },
	{ label: "256 MiB", path: "/v1/messages/batches", bytes: 256 * MIB, reps: 7 },
];

/**
 * Every case, chunked and with Content-Length, through all three Workers: a warm-up, then `reps`
 * rounds in rotating order so drift on the machine spreads evenly over the three.
 * @param {import("./bench/stack.mjs").Prepared} prepared
 */
async function throughput(prepared) {
	return withSubjects(KINDS, prepared, async (subjects) => {
		const rows = [];
		for (const testCase of THROUGHPUT_CASES) {
			for (const declareLength of [false, true]) {
				const body = { path: testCase.path, bytes: testCase.bytes, declareLength };
				/** @type {Record<string, { ms: number[], failures: string[] }>} */
				const runs = Object.fromEntries(KINDS.map((kind) => [kind, { ms: [], failures: [] }]));
				for (let rep = -1; rep < testCase.reps; rep++) {
					const order = KINDS.map((_, i) => KINDS[(i + Math.max(rep, 0)) % KINDS.length]);
					for (const kind of order) {
						const run = runs[kind];
						// One failure is the result: repeating a 256 MB buffering failure proves nothing.
						if (run.failures.length > 0) continue;
						const outcome = await forward(subjects[kind], body);
						if ("failure" in outcome) run.failures.push(outcome.failure);
						else if (rep >= 0) run.ms.push(outcome.ms);
					}
				}
				progress(`A ${testCase.label} ${declareLength ? "content-length" : "chunked"}: ${KINDS.map((k) => `${k} ${summary(runs[k])}`).join(", ")}`);
				rows.push({ ...testCase, declareLength, runs });
			}
		}
		return rows;
	});
}

/** @param {{ ms: number[], failures: string[] }} run */
function summary(run) {
	return run.failures.length > 0 ? `failed (${run.failures[0]})` : `${median(run.ms).toFixed(0)} ms`;
}

/** @param {Awaited<ReturnType<typeof throughput>>} rows */
function throughputTable(rows) {
	return table(
		["Body", "Framing", "Bare pass-through (ceiling)", "Hono bodyLimit", "Guard", "Goal", "Met?"],
		rows.map((row) => {
			const bare = median(row.runs.bare.ms);
			/** @param {import("./bench/stack.mjs").Kind} kind */
			const cell = (kind) => {
				const run = row.runs[kind];
				if (run.failures.length > 0) return `failed: ${run.failures[0]}`;
				const ms = median(run.ms);
				const ratio = kind === "bare" ? "1.00" : (bare / ms).toFixed(2);
				return `${ratio}× · ${mibPerSecond(row.bytes, ms)} · ${ms.toFixed(0)} ms [${Math.min(...run.ms).toFixed(0)}–${Math.max(...run.ms).toFixed(0)}]`;
			};
			const guard = row.runs.guard;
			const met = guard.failures.length === 0 && row.runs.bare.failures.length === 0 && bare / median(guard.ms) >= 0.9;
			return [
				`${row.label} (\`${row.path}\`)`,
				row.declareLength ? "Content-Length" : "chunked",
				cell("bare"),
				cell("hono"),
				cell("guard"),
				"guard ≥ 0.90× bare",
				yesNo(met),
			];
		}),
	);
}

// B. Peak memory -----------------------------------------------------------------------------

const FILES_BODY = 524_288_000;

/**
 * For each Worker in a fresh workerd: its peak RSS after two 1 MiB chunked uploads, then after a
 * 500 MB one (VmHWM, cross-checked by sampling VmRSS every 5 ms).
 * @param {import("./bench/stack.mjs").Prepared} prepared
 */
async function memory(prepared) {
	const rows = [];
	for (const kind of KINDS) {
		const row = await withSubjects([kind], prepared, async ({ [kind]: subject }) => {
			for (let i = 0; i < 2; i++) {
				const small = await forward(subject, { path: "/v1/files", bytes: MIB, declareLength: false });
				if ("failure" in small) throw new Error(`B: ${kind}: a 1 MiB upload failed: ${small.failure}`);
			}
			const base = readMemory(subject.pid).peak;
			const exposure = new AbortController();
			const sampler = sampleRss(subject.pid, {
				everyMs: 5,
				limit: base + MEMORY_EXPOSURE,
				onOver: (rss) => exposure.abort(`workerd reached ${mib(rss)}; stopped at the bench's exposure cap`),
			});
			const big = await forward(subject, {
				path: "/v1/files",
				bytes: FILES_BODY,
				declareLength: false,
				signal: AbortSignal.any([budget.signal, exposure.signal]),
			});
			const sampled = sampler.stop();
			const peak = readMemory(subject.pid).peak;
			return { kind, base, peak, sampled, failure: "failure" in big ? big.failure : undefined, ms: "ms" in big ? big.ms : undefined };
		});
		progress(`B ${kind}: +${mib(row.peak - row.base)}${row.failure ? ` (${row.failure})` : ""}`);
		rows.push(row);
	}
	return rows;
}

/** @param {Awaited<ReturnType<typeof memory>>} rows */
function memoryTable(rows) {
	return table(
		["Worker", "Peak RSS, 1 MiB body", "Peak RSS, 500 MB body", "Difference", "Sampled max RSS (5 ms)", "Upload", "Goal", "Met?"],
		rows.map((row) => {
			const delta = row.peak - row.base;
			const isGuard = row.kind === "guard";
			return [
				LABEL[row.kind],
				mib(row.base),
				mib(row.peak),
				`**${mib(delta)}**`,
				mib(row.sampled),
				row.failure ? `failed: ${row.failure}` : `ok, ${mibPerSecond(FILES_BODY, row.ms ?? 0)}`,
				isGuard ? "≤ 32 MiB" : "(reference)",
				isGuard ? yesNo(!row.failure && delta <= 32 * MIB) : "—",
			];
		}),
	);
}

// C. Early answers -----------------------------------------------------------------------------

const PROBES = 200;
const OVERSIZED_DECLARED = 41_943_040;
const OVERSIZED_CHUNKED = 40 * MIB;
const OVERSIZED_REPS = 3;

/**
 * The guard and Hono (for reference; the bare Worker has no cap) against oversized uploads:
 * a declared length over the cap with `Expect: 100-continue`, then a chunked body over it.
 * @param {import("./bench/stack.mjs").Prepared} prepared
 */
async function earlyAnswers(prepared) {
	/** @type {Record<string, Awaited<ReturnType<typeof earlyAnswersOf>>>} */
	const results = {};
	for (const kind of /** @type {const} */ (["guard", "hono"])) {
		results[kind] = await withSubjects([kind], prepared, ({ [kind]: subject }) => earlyAnswersOf(subject, prepared.caps));
		progress(`C ${kind}: median ${results[kind].declared.median.toFixed(2)} ms, read ${results[kind].chunked.bytesRead.join("/")}`);
	}
	return results;
}

/**
 * @param {import("./bench/stack.mjs").Subject} subject
 * @param {Record<string, number>} caps
 */
async function earlyAnswersOf(subject, caps) {
	const target = { url: subject.url, path: "/v1/messages", headers: subject.headersFor("/v1/messages"), contentLength: OVERSIZED_DECLARED, timeoutMs: 5_000 };
	for (let i = 0; i < 5; i++) await timeEarlyAnswer(target); // warm-up
	const sinkBefore = await subject.sinkStats();
	subject.clearOutput();
	const times = [];
	for (let i = 0; i < PROBES; i++) {
		const { ms, statusLine } = await timeEarlyAnswer(target);
		if (!statusLine.startsWith("HTTP/1.1 413")) throw new Error(`C: ${subject.kind} answered ${statusLine} to an oversized content-length`);
		times.push(ms);
	}
	const logged = subject.kind === "guard" ? await loggedBytesRead(subject, PROBES) : [];
	const sinkAfterProbes = await subject.sinkStats();
	const declared = {
		median: median(times),
		p99: quantile(times, 0.99),
		bytesRead: subject.kind === "guard" ? Math.max(...logged) : undefined,
		logged: logged.length,
		sinkUploads: sinkAfterProbes.seq - sinkBefore.seq,
	};

	const chunked = { bytesRead: /** @type {number[]} */ ([]), sink: /** @type {string[]} */ ([]), sinkMax: 0, sentAtAnswer: /** @type {number[]} */ ([]), ms: /** @type {number[]} */ ([]), statuses: /** @type {number[]} */ ([]) };
	for (let i = 0; i < OVERSIZED_REPS; i++) {
		const before = (await subject.sinkStats()).seq;
		subject.clearOutput();
		const result = await upload({ url: subject.url, path: "/v1/messages", headers: subject.headersFor("/v1/messages"), bytes: OVERSIZED_CHUNKED, declareLength: false, timeoutMs: 60_000, signal: budget.signal });
		if (result.error && result.status === 0) throw new Error(`C: ${subject.kind}: oversized chunked upload failed: ${result.error}`);
		chunked.statuses.push(result.status);
		chunked.sentAtAnswer.push(result.sentAtAnswer ?? result.sent);
		chunked.ms.push(result.ms);
		if (subject.kind === "guard") chunked.bytesRead.push(...(await loggedBytesRead(subject, 1)));
		const reached = (await subject.sinkStats()).uploads.filter((entry) => entry.seq > before);
		for (const entry of reached) {
			chunked.sink.push(`${entry.bytes} (${entry.outcome})`);
			chunked.sinkMax = Math.max(chunked.sinkMax, entry.bytes);
		}
		if (reached.length === 0) chunked.sink.push("0");
	}
	const final = await subject.sinkStats();
	const completeOverCap = final.uploads.filter((entry) => entry.outcome === "complete" && entry.bytes > (caps[entry.path] ?? 0)).length;
	return { declared, chunked, completeOverCap, sinkRecords: final.uploads.length };
}

/**
 * The guard's `decisions.cap.bytes_read` from its log lines (util.inspect text on workerd's
 * stdout), waiting up to 2 s for `count` of them to arrive.
 * @param {import("./bench/stack.mjs").Subject} subject
 * @param {number} count
 */
async function loggedBytesRead(subject, count) {
	/** @type {number[]} */
	let found = [];
	for (let waited = 0; waited < 2000; waited += 20) {
		found = [...subject.output().matchAll(/bytes_read: (\d+)/g)].map((match) => Number(match[1]));
		if (found.length >= count) break;
		await new Promise((resolve) => setTimeout(resolve, 20));
	}
	if (found.length < count) throw new Error(`C: expected ${count} guard log lines with bytes_read, found ${found.length}`);
	return found;
}

/**
 * @param {Awaited<ReturnType<typeof earlyAnswers>>} results
 * @param {number} cap
 */
function earlyTable(results, cap) {
	const { guard, hono } = results;
	const ms = (/** @type {number} */ value) => `${value.toFixed(2)} ms`;
	const list = (/** @type {number[]} */ values, /** @type {(n: number) => string} */ format) => values.map(format).join(" / ");
	const overBy = (/** @type {number} */ bytes) => `${bytes} (cap + ${bytes - cap} B)`;
	const readLimit = cap + MIB;
	const declaredCase = `Content-Length ${OVERSIZED_DECLARED} + \`Expect: 100-continue\` (${PROBES}×)`;
	const chunkedCase = `chunked ${OVERSIZED_CHUNKED} B (${OVERSIZED_REPS}×)`;
	return table(
		["Case", "Measure", "Guard", "Hono bodyLimit (reference)", "Goal (guard)", "Met?"],
		[
			[declaredCase, "time to `413` status line, median", ms(guard.declared.median), ms(hono.declared.median), "< 2 ms", yesNo(guard.declared.median < 2)],
			[declaredCase, "time to `413` status line, p99", ms(guard.declared.p99), ms(hono.declared.p99), "—", "—"],
			[declaredCase, "body bytes read (guard's log)", `${guard.declared.bytesRead} in all ${guard.declared.logged} log lines`, "n/a", "0", yesNo(guard.declared.bytesRead === 0 && guard.declared.logged === PROBES)],
			[declaredCase, "requests that reached the sink", guard.declared.sinkUploads, hono.declared.sinkUploads, "0", yesNo(guard.declared.sinkUploads === 0)],
			[chunkedCase, "status", list(guard.chunked.statuses, String), list(hono.chunked.statuses, String), "413", yesNo(guard.chunked.statuses.every((s) => s === 413))],
			[chunkedCase, "bytes read before the `413` (guard's log)", list(guard.chunked.bytesRead, overBy), "n/a (not logged)", `≤ cap + 1 MiB (${readLimit})`, yesNo(guard.chunked.bytesRead.every((b) => b <= readLimit))],
			[chunkedCase, "bytes that reached the sink (its record)", guard.chunked.sink.join(" / "), hono.chunked.sink.join(" / "), "never the whole body", yesNo(guard.chunked.sinkMax < OVERSIZED_CHUNKED)],
			["all of C", "complete bodies over the cap at the sink", guard.completeOverCap, hono.completeOverCap, "0", yesNo(guard.completeOverCap === 0)],
			[chunkedCase, "client bytes sent when the `413` arrived", list(guard.chunked.sentAtAnswer, mib), list(hono.chunked.sentAtAnswer, mib), "—", "—"],
			[chunkedCase, "time to the answer's end", list(guard.chunked.ms, ms), list(hono.chunked.ms, ms), "—", "—"],
		],
	);
}

// Report -------------------------------------------------------------------------------------

function machine() {
	let workerd = "unknown";
	try {
		workerd = execFileSync("npx", ["workerd", "--version"], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 60_000 }).trim();
	} catch (error) {
		workerd = `unknown (${error})`;
	}
	const cores = cpus();
	return `${cores[0]?.model ?? "unknown CPU"}, ${cores.length} cores, ${(totalmem() / 1024 ** 3).toFixed(1)} GiB memory, Node ${process.version}, ${workerd}`;
}

/** The 1-minute load average: other work on the machine is the main source of noise. */
function load() {
	return loadavg()[0]?.toFixed(2) ?? "?";
}

const METHOD = `Method: three Workers, each alone in its own workerd process (bare workerd through Miniflare's API,
\`cf: false\`, listening on 127.0.0.1), each forwarding over the service binding \`ORIGIN\` to its own
sink Worker that reads the body to its end counting bytes and keeps a record of its last uploads
(\`GET /__sink/stats\`): a **bare pass-through** (\`env.ORIGIN.fetch(request)\`, no checks: the
physical ceiling), **Hono's \`bodyLimit\`** with the same per-route caps (taken from
\`wrangler.toml\`) answering 413, and **the guard** (\`src/index.ts\` bundled as for deployment, with
\`wrangler.toml\`'s bindings, \`ORIGIN\` bound to the sink). The client is Node's \`node:http\` over
loopback, one connection per request (no keep-alive), writing one reused 1 MiB buffer with
backpressure; chunked bodies carry no Content-Length. **A**: after a warm-up per Worker,
${THROUGHPUT_CASES.map((c) => `${c.reps} rounds (${c.label})`).join(" or ")} in rotating order; median time from the request's start to the
answer's end; every run checks that the sink read exactly the bytes sent; speed is a ratio to the
bare Worker measured in the same run. A Worker that fails is reported as failed, once. **B**: a
fresh workerd per Worker; its peak RSS (\`VmHWM\` in \`/proc/PID/status\`, which covers the sink in
the same process) after two 1 MiB chunked uploads, then after one chunked upload of exactly
524,288,000 bytes to \`POST /v1/files\`; the difference is what forwarding the big body cost (VmRSS
sampled every 5 ms as a cross-check; a run growing by ${mib(MEMORY_EXPOSURE)} is stopped). **C**: a
raw TCP socket sends only the headers of a ${OVERSIZED_DECLARED}-byte upload with
\`Expect: 100-continue\` to \`POST /v1/messages\` (cap 33,554,432) and times the wait for the final
status line, ${PROBES} times after 5 warm-ups; then a ${OVERSIZED_CHUNKED}-byte chunked upload
(the client stops sending when the 413 arrives; "sent" counts bytes flushed to the kernel, so it
includes what still sat in loopback socket buffers), ${OVERSIZED_REPS} times. The guard's bytes read
come from its own log line (\`decisions.cap.bytes_read\` on workerd's stdout); what reached the origin
comes from the sink's record.`;

/**
 * @param {{ a: string, b: string, c: string, machine: string, loadAtStart: string, seconds: number }} parts
 */
function section({ a, b, c, machine: description, loadAtStart, seconds }) {
	return `_Written by \`npm run bench\` (\`scripts/bench.mjs\`) on ${new Date().toISOString()}; the run took ${seconds.toFixed(0)} s._

Machine: ${description}; 1-minute load average ${loadAtStart} at the start, ${load()} at the end.

${METHOD}

### A. Forwarding throughput (ratio to the bare pass-through; higher is better)

Each cell: ratio of the bare Worker's median time to this Worker's · throughput at the median ·
median time [fastest–slowest run].

${a}

### B. Runtime peak memory forwarding a 500 MB chunked body (\`POST /v1/files\`)

${b}

### C. Oversized bodies on \`POST /v1/messages\` (cap 33,554,432 bytes)

${c}
`;
}

const PREAMBLE = `# Benchmarks

Written by the benchmark scripts (\`npm run bench\`); each section belongs to one benchmark, which
rewrites only its own section. Numbers are from one run on the machine each section names;
speed is always a ratio to a baseline measured in the same run.
`;

// Main ---------------------------------------------------------------------------------------

const startedAt = performance.now();

async function main() {
	const description = machine();
	const loadAtStart = load();
	const prepared = await prepareSubjects();
	progress(`machine: ${description}; load ${loadAtStart}`);
	const a = throughputTable(await throughput(prepared));
	const b = memoryTable(await memory(prepared));
	const c = earlyTable(await earlyAnswers(prepared), prepared.caps["/v1/messages"] ?? 0);
	const seconds = (performance.now() - startedAt) / 1000;
	const text = section({ a, b, c, machine: description, loadAtStart, seconds });
	console.log(`${SECTION}\n\n${text}`);
	// A run against another guard entry (a prototype elsewhere) is not the project's result.
	if (process.env.BENCH_GUARD_ENTRY) return progress(`BENCH_GUARD_ENTRY is set: BENCHMARKS.md left alone (${seconds.toFixed(0)} s)`);
	writeSection(resolve(ROOT, "BENCHMARKS.md"), SECTION, text, PREAMBLE);
	progress("usage limiter (issue 5)");
	const limits = await limiterBench();
	console.log(`${LIMITS_SECTION}\n\n${limits}`);
	writeSection(resolve(ROOT, "BENCHMARKS.md"), LIMITS_SECTION, `_Written by \`npm run bench\` on ${new Date().toISOString()}; ${description}._\n\n${limits}`, PREAMBLE);
	progress(`wrote BENCHMARKS.md (${((performance.now() - startedAt) / 1000).toFixed(0)} s)`);
}

const overtime = setTimeout(() => budget.abort(`the bench's ${BUDGET_MS / 60_000}-minute budget ran out`), BUDGET_MS);
for (const signal of /** @type {const} */ (["SIGINT", "SIGTERM"])) {
	process.once(signal, async () => {
		budget.abort(`stopped by ${signal}`);
		await Promise.all([...live].map(stop));
		process.exit(130);
	});
}
try {
	await main();
} catch (error) {
	process.exitCode = 1;
	console.error(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : error}`);
} finally {
	clearTimeout(overtime);
	await Promise.all([...live].map(stop));
}
