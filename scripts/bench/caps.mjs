// The body-cap benchmarks (issue 3, and issue 13's Content-Length rows). Workers, each in its own
// workerd through Miniflare in front of its own byte-counting sink: a bare pass-through (the
// physical ceiling), Hono's bodyLimit (what an author would pick instead), the guard, and the
// guard with TRUST_DECLARED_LENGTH = false. Returns the markdown of the "## Body caps (issue 3)"
// section: A. forwarding throughput, B. peak memory, C. oversized bodies.
import { timeEarlyAnswer, upload } from "./client.mjs";
import { largeJsonFrame } from "./messages-body.mjs";
import { readMemory, sampleRss } from "./memory.mjs";
import { median, mib, mibPerSecond, quantile, table, yesNo } from "./report.mjs";
import { prepareSubjects, startSubject } from "./stack.mjs";

const MIB = 1024 * 1024;
/** @type {import("./stack.mjs").Kind[]} */
const KINDS = ["bare", "hono", "guard", "guard-untrusting"];
const LABEL = { bare: "Bare pass-through", hono: "Hono bodyLimit", guard: "Guard", "guard-untrusting": "Guard, TRUST_DECLARED_LENGTH=false" };
/** A ballooning run (Hono buffering 500 MB) is stopped once workerd grows this much. */
const MEMORY_EXPOSURE = 2 * 1024 * MIB;

/**
 * @typedef {object} CapsContext
 * @property {AbortSignal} signal the whole run's budget
 * @property {(message: string) => void} progress
 * @property {Set<import("./stack.mjs").Subject>} live subjects running now (stopped on a signal)
 */

/**
 * Runs `fn` with fresh subjects of the given kinds, stopping them whatever happens.
 * @template T
 * @param {CapsContext} ctx
 * @param {import("./stack.mjs").Kind[]} kinds
 * @param {import("./stack.mjs").Prepared} prepared
 * @param {(subjects: Record<string, import("./stack.mjs").Subject>) => Promise<T>} fn
 * @returns {Promise<T>}
 */
async function withSubjects(ctx, kinds, prepared, fn) {
	/** @type {Record<string, import("./stack.mjs").Subject>} */
	const subjects = {};
	try {
		for (const kind of kinds) {
			const subject = await startSubject(kind, prepared);
			ctx.live.add(subject);
			subjects[kind] = subject;
		}
		return await fn(subjects);
	} finally {
		await Promise.all(
			Object.values(subjects).map(async (subject) => {
				ctx.live.delete(subject);
				await subject.dispose().catch((error) => ctx.progress(`could not stop ${subject.kind}: ${error}`));
			}),
		);
	}
}

/** Generous, but bounded: at least 10 MiB/s. */
function timeoutFor(/** @type {number} */ bytes) {
	return 20_000 + (bytes / MIB) * 100;
}

/**
 * Uploads and checks that the sink answered having read exactly the bytes sent; returns the time,
 * or why it failed.
 * @param {CapsContext} ctx
 * @param {import("./stack.mjs").Subject} subject
 * @param {{ path: string, bytes: number, declareLength: boolean, signal?: AbortSignal, frame?: { head: Buffer, tail: Buffer } }} body
 * @returns {Promise<{ ms: number } | { failure: string }>}
 */
async function forward(ctx, subject, { path, bytes, declareLength, signal, frame }) {
	const result = await upload({ url: subject.url, path, headers: subject.headersFor(path), bytes, declareLength, timeoutMs: timeoutFor(bytes), signal: signal ?? ctx.signal, frame });
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

/**
 * Every body is a real JSON document of the route's kind (its bulk one long text string), so a
 * guard configured with the 10-minute rule reads a Messages body to its end as it would a real one
 * (whether a route has it comes from wrangler.toml: `refuse_long_non_streaming`).
 */
const THROUGHPUT_CASES = [
	// Many rounds for 32 MiB: a bare run takes ~15 ms, where scheduling noise on 2 cores is large.
	{ label: "32 MiB", path: "/v1/messages", kind: "messages", bytes: 32 * MIB, reps: 15, framings: [false, true] },
	{ label: "32 MiB", path: "/v1/messages/count_tokens", kind: "messages", bytes: 32 * MIB, reps: 15, framings: [true] },
	{ label: "256 MiB", path: "/v1/messages/batches", kind: "batch", bytes: 256 * MIB, reps: 9, framings: [false, true] },
	// A route that needs no look inside its body (no metering, no rule): the untouched path at a size where a run is not noise.
	{ label: "256 MiB", path: "/v1/files", kind: "messages", bytes: 256 * MIB, reps: 9, framings: [true] },
];

/**
 * Every case through every Worker: a warm-up, then `reps` rounds in rotating order so drift on the
 * machine spreads evenly over them.
 * @param {CapsContext} ctx
 * @param {import("./stack.mjs").Prepared} prepared
 */
async function throughput(ctx, prepared) {
	return withSubjects(ctx, KINDS, prepared, async (subjects) => {
		const rows = [];
		for (const testCase of THROUGHPUT_CASES) {
			const frame = largeJsonFrame(/** @type {"messages" | "batch"} */ (testCase.kind), testCase.bytes);
			for (const declareLength of testCase.framings) {
				const body = { path: testCase.path, bytes: testCase.bytes, declareLength, frame };
				/** @type {Record<string, { ms: number[], failures: string[] }>} */
				const runs = Object.fromEntries(KINDS.map((kind) => [kind, { ms: [], failures: [] }]));
				for (let rep = -1; rep < testCase.reps; rep++) {
					const order = KINDS.map((_, i) => KINDS[(i + Math.max(rep, 0)) % KINDS.length] ?? "bare");
					for (const kind of order) {
						const run = runs[kind];
						const subject = subjects[kind];
						// One failure is the result: repeating a 256 MB buffering failure proves nothing.
						if (!run || !subject || run.failures.length > 0) continue;
						const outcome = await forward(ctx, subject, body);
						if ("failure" in outcome) run.failures.push(outcome.failure);
						else if (rep >= 0) run.ms.push(outcome.ms);
					}
				}
				ctx.progress(`A ${testCase.label} ${testCase.path} ${declareLength ? "content-length" : "chunked"}: ${KINDS.map((k) => `${k} ${summary(runs[k])}`).join(", ")}`);
				rows.push({ ...testCase, declareLength, runs, inspects: prepared.inspects(testCase.path), meters: prepared.meters(testCase.path) });
			}
		}
		return rows;
	});
}

/** @param {{ ms: number[], failures: string[] } | undefined} run */
function summary(run) {
	if (!run) return "not run";
	return run.failures.length > 0 ? `failed (${run.failures[0]})` : `${median(run.ms).toFixed(0)} ms`;
}

/** @param {Awaited<ReturnType<typeof throughput>>} rows */
function throughputTable(rows) {
	return table(
		["Body", "Framing", ...KINDS.map((kind) => (kind === "bare" ? `${LABEL[kind]} (ceiling)` : LABEL[kind])), "Goal (guard)", "Met?"],
		rows.map((row) => {
			const bareRun = row.runs.bare;
			/**
			 * The bare Worker's time over this one's in each round (they ran next to each other), median.
			 * @param {import("./stack.mjs").Kind} kind
			 */
			const ratio = (kind) => {
				const run = row.runs[kind];
				if (!run || !bareRun || run.failures.length > 0 || bareRun.failures.length > 0) return Number.NaN;
				return median(run.ms.map((ms, i) => (bareRun.ms[i] ?? Number.NaN) / ms).filter((value) => Number.isFinite(value)));
			};
			/** @param {import("./stack.mjs").Kind} kind */
			const cell = (kind) => {
				const run = row.runs[kind];
				if (!run) return "not run";
				if (run.failures.length > 0) return `failed: ${run.failures[0]}`;
				const ms = median(run.ms);
				return `${kind === "bare" ? "1.00" : ratio(kind).toFixed(2)}× · ${mibPerSecond(row.bytes, ms)} · ${ms.toFixed(0)} ms [${Math.min(...run.ms).toFixed(0)}–${Math.max(...run.ms).toFixed(0)}]`;
			};
			const untouched = row.declareLength && !row.inspects && !row.meters;
			// A metered body too long for the admission peek is read whole for its claim: every byte goes through JavaScript (issue 19).
			const goal = untouched ? "≥ 0.90× bare (issue 13)" : row.meters ? "none: read whole for its claim (issue 19)" : "≥ 0.90× bare (issue 3)";
			const met = row.meters ? undefined : ratio("guard") >= 0.9;
			return [
				`${row.label} (\`${row.path}\`${row.inspects ? ", 10-minute rule reads it" : ""}${row.meters ? ", metered" : ""})`,
				row.declareLength ? "Content-Length" : "chunked",
				...KINDS.map(cell),
				goal,
				met === undefined ? "—" : yesNo(met),
			];
		}),
	);
}

// B. Peak memory -----------------------------------------------------------------------------

const FILES_BODY = 524_288_000;
/** @type {import("./stack.mjs").Kind[]} */
const MEMORY_KINDS = ["bare", "hono", "guard"];

/**
 * For each Worker in a fresh workerd: its peak RSS after two 1 MiB chunked uploads, then after a
 * 500 MB one (VmHWM, cross-checked by sampling VmRSS every 5 ms). A Worker that fails is a row
 * that says how.
 * @param {CapsContext} ctx
 * @param {import("./stack.mjs").Prepared} prepared
 */
async function memory(ctx, prepared) {
	const rows = [];
	for (const kind of MEMORY_KINDS) {
		const row = await withSubjects(ctx, [kind], prepared, async ({ [kind]: subject }) => {
			if (!subject) throw new Error(`no ${kind} subject`);
			for (let i = 0; i < 2; i++) {
				const small = await forward(ctx, subject, { path: "/v1/files", bytes: MIB, declareLength: false });
				if ("failure" in small) return { kind, base: 0, peak: 0, sampled: 0, failure: `a 1 MiB upload failed: ${small.failure}`, ms: undefined };
			}
			const base = readMemory(subject.pid).peak;
			const exposure = new AbortController();
			const sampler = sampleRss(subject.pid, {
				everyMs: 5,
				limit: base + MEMORY_EXPOSURE,
				onOver: (rss) => exposure.abort(`workerd reached ${mib(rss)}; stopped at the bench's exposure cap`),
			});
			const big = await forward(ctx, subject, {
				path: "/v1/files",
				bytes: FILES_BODY,
				declareLength: false,
				signal: AbortSignal.any([ctx.signal, exposure.signal]),
			});
			const sampled = sampler.stop();
			const peak = readMemory(subject.pid).peak;
			return { kind, base, peak, sampled, failure: "failure" in big ? big.failure : undefined, ms: "ms" in big ? big.ms : undefined };
		});
		ctx.progress(`B ${kind}: +${mib(row.peak - row.base)}${row.failure ? ` (${row.failure})` : ""}`);
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
 * a declared length over the cap with `Expect: 100-continue`, then a chunked body over it. What
 * either does (an answer, a reset, a timeout) is recorded, never a crash of the bench.
 * @param {CapsContext} ctx
 * @param {import("./stack.mjs").Prepared} prepared
 */
async function earlyAnswers(ctx, prepared) {
	/** @type {Record<string, Awaited<ReturnType<typeof earlyAnswersOf>>>} */
	const results = {};
	for (const kind of /** @type {const} */ (["guard", "hono"])) {
		results[kind] = await withSubjects(ctx, [kind], prepared, ({ [kind]: subject }) => {
			if (!subject) throw new Error(`no ${kind} subject`);
			return earlyAnswersOf(ctx, subject, prepared.caps);
		});
		const result = results[kind];
		ctx.progress(`C ${kind}: median ${result.declared.median.toFixed(2)} ms, statuses ${result.chunked.statuses.join(" / ")}`);
	}
	return results;
}

/**
 * @param {CapsContext} ctx
 * @param {import("./stack.mjs").Subject} subject
 * @param {Record<string, number>} caps
 */
async function earlyAnswersOf(ctx, subject, caps) {
	const target = { url: subject.url, path: "/v1/messages", headers: subject.headersFor("/v1/messages"), contentLength: OVERSIZED_DECLARED, timeoutMs: 5_000 };
	/** @type {string[]} */
	const probeFailures = [];
	/** @param {boolean} record */
	const probe = async (record) => {
		try {
			const { ms, statusLine } = await timeEarlyAnswer(target);
			if (!statusLine.startsWith("HTTP/1.1 413")) probeFailures.push(`answered ${statusLine}`);
			return record ? ms : undefined;
		} catch (error) {
			probeFailures.push(String(error));
			return undefined;
		}
	};
	for (let i = 0; i < 5; i++) await probe(false); // warm-up
	probeFailures.length = 0;
	const sinkBefore = await subject.sinkStats();
	subject.clearOutput();
	const times = [];
	for (let i = 0; i < PROBES; i++) {
		const ms = await probe(true);
		if (ms !== undefined) times.push(ms);
	}
	const logged = subject.kind === "guard" ? await loggedBytesRead(subject, PROBES) : [];
	const sinkAfterProbes = await subject.sinkStats();
	const declared = {
		median: median(times),
		p99: quantile(times, 0.99),
		failures: probeFailures,
		bytesRead: subject.kind === "guard" && logged.length > 0 ? Math.max(...logged) : undefined,
		logged: logged.length,
		sinkUploads: sinkAfterProbes.seq - sinkBefore.seq,
	};

	const chunked = {
		bytesRead: /** @type {number[]} */ ([]),
		sink: /** @type {string[]} */ ([]),
		sinkMax: 0,
		sentAtAnswer: /** @type {number[]} */ ([]),
		ms: /** @type {number[]} */ ([]),
		statuses: /** @type {string[]} */ ([]),
	};
	const frame = largeJsonFrame("messages", OVERSIZED_CHUNKED);
	for (let i = 0; i < OVERSIZED_REPS; i++) {
		const before = (await subject.sinkStats()).seq;
		subject.clearOutput();
		const result = await upload({ url: subject.url, path: "/v1/messages", headers: subject.headersFor("/v1/messages"), bytes: OVERSIZED_CHUNKED, declareLength: false, timeoutMs: 60_000, signal: ctx.signal, frame });
		// A reset before any answer (Hono closing on an upload it refuses) is what happened: recorded.
		chunked.statuses.push(result.status === 0 ? `no answer (${result.error ?? "connection closed"})` : String(result.status));
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
 * stdout), waiting up to 2 s for `count` of them to arrive; fewer is recorded as found.
 * @param {import("./stack.mjs").Subject} subject
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
	return found;
}

/**
 * @param {Awaited<ReturnType<typeof earlyAnswers>>} results
 * @param {number} cap
 */
function earlyTable(results, cap) {
	const { guard, hono } = results;
	if (!guard || !hono) throw new Error("C: missing results");
	const ms = (/** @type {number} */ value) => `${value.toFixed(2)} ms`;
	const list = (/** @type {number[]} */ values, /** @type {(n: number) => string} */ format) => values.map(format).join(" / ");
	const overBy = (/** @type {number} */ bytes) => `${bytes} (cap + ${bytes - cap} B)`;
	const readLimit = cap + MIB;
	const declaredCase = `Content-Length ${OVERSIZED_DECLARED} + \`Expect: 100-continue\` (${PROBES}×)`;
	const chunkedCase = `chunked ${OVERSIZED_CHUNKED} B of JSON (${OVERSIZED_REPS}×)`;
	const failed = (/** @type {string[]} */ failures) => (failures.length > 0 ? `; ${failures.length} probes failed: ${failures[0]}` : "");
	return table(
		["Case", "Measure", "Guard", "Hono bodyLimit (reference)", "Goal (guard)", "Met?"],
		[
			[declaredCase, "time to `413` status line, median", `${ms(guard.declared.median)}${failed(guard.declared.failures)}`, `${ms(hono.declared.median)}${failed(hono.declared.failures)}`, "< 2 ms, every probe 413", yesNo(guard.declared.median < 2 && guard.declared.failures.length === 0)],
			[declaredCase, "time to `413` status line, p99", ms(guard.declared.p99), ms(hono.declared.p99), "—", "—"],
			[declaredCase, "body bytes read (guard's log)", `${guard.declared.bytesRead} in all ${guard.declared.logged} log lines`, "n/a", "0", yesNo(guard.declared.bytesRead === 0 && guard.declared.logged === PROBES)],
			[declaredCase, "requests that reached the sink", guard.declared.sinkUploads, hono.declared.sinkUploads, "0", yesNo(guard.declared.sinkUploads === 0)],
			[chunkedCase, "status", guard.chunked.statuses.join(" / "), hono.chunked.statuses.join(" / "), "413", yesNo(guard.chunked.statuses.every((s) => s === "413"))],
			[chunkedCase, "bytes read before the `413` (guard's log)", list(guard.chunked.bytesRead, overBy) || "no log line", "n/a (not logged)", `≤ cap + 1 MiB (${readLimit})`, yesNo(guard.chunked.bytesRead.length === OVERSIZED_REPS && guard.chunked.bytesRead.every((b) => b <= readLimit))],
			[chunkedCase, "bytes that reached the sink (its record)", guard.chunked.sink.join(" / "), hono.chunked.sink.join(" / "), "never the whole body", yesNo(guard.chunked.sinkMax < OVERSIZED_CHUNKED)],
			["all of C", "complete bodies over the cap at the sink", guard.completeOverCap, hono.completeOverCap, "0", yesNo(guard.completeOverCap === 0)],
			[chunkedCase, "client bytes sent when the `413` arrived", list(guard.chunked.sentAtAnswer, mib), list(hono.chunked.sentAtAnswer, mib), "—", "—"],
			[chunkedCase, "time to the answer's end", list(guard.chunked.ms, ms), list(hono.chunked.ms, ms), "—", "—"],
		],
	);
}

// Report -------------------------------------------------------------------------------------

const METHOD = `Method: four Workers, each alone in its own workerd process (bare workerd through Miniflare's API,
\`cf: false\`, listening on 127.0.0.1), each forwarding over the service binding \`ORIGIN\` to its own
sink Worker that reads the body to its end counting bytes and keeps a record of its last uploads
(\`GET /__sink/stats\`): a **bare pass-through** (\`env.ORIGIN.fetch(request)\`, no checks: the
physical ceiling), **Hono's \`bodyLimit\`** with the same per-route caps (taken from
\`wrangler.toml\`) answering 413, **the guard** (\`src/index.ts\` bundled as for deployment, with
\`wrangler.toml\`'s bindings, \`ORIGIN\` bound to the sink, usage limits raised to the token-bucket
maximum so no upload is refused for its estimated tokens) and the guard with
\`TRUST_DECLARED_LENGTH = false\` (every body through the counting pump; a guard that does not know
the variable ignores it, and its column then repeats the guard's). The client is Node's \`node:http\` over
loopback, one connection per request (no keep-alive), writing one reused 1 MiB buffer with
backpressure; every body is a real JSON document of its route (a Messages request, or a Message
Batches request holding one) whose bulk is one long text string, so the 10-minute rule, on a route
configured with it (\`refuse_long_non_streaming\`; such rows say so), reads it to its end; chunked bodies carry no Content-Length. **A**: after a warm-up per Worker,
${[...new Set(THROUGHPUT_CASES.map((c) => `${c.reps} rounds (${c.label})`))].join(" or ")} in rotating order; median time from the request's start to the
answer's end; every run checks that the sink read exactly the bytes sent; speed is the bare Worker's
time over this Worker's in the same round, median of the rounds. A Worker that fails is reported as failed, once. Rows on a route
that needs no look inside the body, with a Content-Length, carry issue 13's goal (a valid declared length within the cap
forwarded as the untouched \`request.body\`). **B**: a
fresh workerd per Worker; its peak RSS (\`VmHWM\` in \`/proc/PID/status\`, which covers the sink in
the same process) after two 1 MiB chunked uploads, then after one chunked upload of exactly
524,288,000 bytes to \`POST /v1/files\`; the difference is what forwarding the big body cost (VmRSS
sampled every 5 ms as a cross-check; a run growing by ${mib(MEMORY_EXPOSURE)} is stopped). **C**: a
raw TCP socket sends only the headers of a ${OVERSIZED_DECLARED}-byte upload with
\`Expect: 100-continue\` to \`POST /v1/messages\` (cap 33,554,432) and times the wait for the final
status line, ${PROBES} times after 5 warm-ups; then a ${OVERSIZED_CHUNKED}-byte chunked upload
(the client stops sending when the 413 arrives; "sent" counts bytes flushed to the kernel, so it
includes what still sat in loopback socket buffers), ${OVERSIZED_REPS} times; an upload answered by a reset is
recorded as such. The guard's bytes read
come from its own log line (\`decisions.cap.bytes_read\` on workerd's stdout); what reached the origin
comes from the sink's record.`;

/**
 * Runs A, B and C; returns the section's markdown (after its heading).
 * @param {CapsContext & { machine: string, loadAtStart: string, load: () => string, startedAt: number }} ctx
 */
export async function capsBench(ctx) {
	const prepared = await prepareSubjects();
	const a = throughputTable(await throughput(ctx, prepared));
	const b = memoryTable(await memory(ctx, prepared));
	const c = earlyTable(await earlyAnswers(ctx, prepared), prepared.caps["/v1/messages"] ?? 0);
	const seconds = (performance.now() - ctx.startedAt) / 1000;
	return `_Written by \`npm run bench\` (\`scripts/bench.mjs\`) on ${new Date().toISOString()}; the run took ${seconds.toFixed(0)} s._

Machine: ${ctx.machine}; 1-minute load average ${ctx.loadAtStart} at the start, ${ctx.load()} at the end.

${METHOD}

### A. Forwarding throughput (ratio to the bare pass-through; higher is better)

Each cell: ratio to the bare Worker (its time over this Worker's in the same round, median of the
rounds) · throughput at the median time · median time [fastest–slowest run].

${a}

### B. Runtime peak memory forwarding a 500 MB chunked body (\`POST /v1/files\`)

${b}

### C. Oversized bodies on \`POST /v1/messages\` (cap 33,554,432 bytes)

${c}
`;
}
