#!/usr/bin/env node
// `npm run bench [-- SECTION...] [--rounds N] [--seconds S] [--one-seconds S] [--delay-ms MS] [--no-write]`
//   (locations also takes [--isolates K] [--orgs N] [--burst F] [--distances MS,MS,...] [--limiter-failure P])
//
// The benchmarks, one per section of BENCHMARKS.md; each rewrites only its own section.
//   caps        body caps (issue 3): throughput against a bare pass-through and Hono, memory, early answers
//   limits      usage limiter (issue 5): latency added, object calls per request, a burst (interleaved rounds)
//   small       small requests (issue 13): 3 KB POST /v1/messages and GET /v1/models against a bare Worker
//   distant     a distant usage object (issue 13): latency added in exact and lease mode with a delay on every call
//   interposed  minimal Workers (issue 13): a bare pass-through against Workers that put a stream in the upload
//   profile     CPU profiles of the guard under the small requests (printed only; scripts/bench/profile.mjs)
//   bombs       decompression bombs (issue 20): gzip bodies decoding past the cap, the workerd's memory growth
//   locations   accounting across isolates (issue 19): K guard isolates sharing a usage object 0, 30 and 80 ms
//               away, bursts of several organisations against small limits, admitted vs limit per mode
//   peers       against the gateway people pick instead (issue 22): bare, the guard in lease and exact mode
//               and Portkey's gateway (installed on demand into .bench-peers/) in front of one origin by URL
// No section: caps, limits and small. A run with BENCH_GUARD_ENTRY set (another guard entry, a
// prototype) leaves BENCHMARKS.md alone. A failed run exits non-zero.
import { execFileSync, spawn } from "node:child_process";
import { cpus, loadavg, totalmem } from "node:os";
import { resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { ROOT } from "./lib/build-worker.mjs";
import { BOMBS_SECTION, bombsBench } from "./bench/bombs.mjs";
import { capsBench } from "./bench/caps.mjs";
import { DISTANT_SECTION, distantBench } from "./bench/distant.mjs";
import { INTERPOSED_SECTION, interposedBench } from "./bench/interposed-stream.mjs";
import { limiterBench } from "./bench/limits.mjs";
import { LOCATIONS_SECTION, locationsBench } from "./bench/locations.mjs";
import { PEERS_SECTION, peersBench } from "./bench/peers.mjs";
import { writeSection } from "./bench/report.mjs";
import { SMALL_SECTION, smallBench } from "./bench/small.mjs";

process.env.WRANGLER_SEND_METRICS = "false";

const SECTIONS = ["caps", "limits", "small", "distant", "interposed", "profile", "locations", "bombs", "peers"];
const DEFAULT_SECTIONS = ["caps", "limits", "small"];
const CAPS_SECTION = "## Body caps (issue 3)";
const LIMITS_SECTION = "## Usage limits (issue 5)";
/** A section's uploads are cut short after this; everything started is still stopped. */
const BUDGET_MS = 8 * 60_000;

const { values, positionals } = parseArgs({
	allowPositionals: true,
	options: {
		rounds: { type: "string", default: "3" },
		seconds: { type: "string", default: "5" },
		"one-seconds": { type: "string", default: "2" },
		"delay-ms": { type: "string", default: "30" },
		isolates: { type: "string", default: "4" },
		orgs: { type: "string", default: "1" },
		burst: { type: "string", default: "3" },
		distances: { type: "string", default: "0,30,80" },
		"limiter-failure": { type: "string", default: "closed" },
		"no-write": { type: "boolean", default: false },
		help: { type: "boolean", default: false },
	},
});
const unknown = positionals.filter((name) => !SECTIONS.includes(name));
if (values.help || unknown.length > 0) {
	if (unknown.length > 0) console.error(`unknown section ${unknown.join(", ")}; the sections are ${SECTIONS.join(", ")}`);
	console.error("usage: npm run bench [-- caps|limits|small|distant|interposed|profile|locations|bombs|peers ...] [--rounds N] [--seconds S] [--one-seconds S] [--delay-ms MS] [--no-write]");
	console.error("       locations: [--isolates K (default 4)] [--orgs N per limit (default 1)] [--burst F, times what a limit holds (default 3)] [--distances MS,MS,... (default 0,30,80)] [--limiter-failure closed|open|local (default closed)]");
	process.exit(unknown.length > 0 ? 2 : 0);
}
/** @param {string} name @param {number} min @param {number} max */
function numberOption(name, min, max) {
	const value = Number(values[/** @type {"rounds"} */ (name)]);
	if (!Number.isFinite(value) || value < min || value > max) {
		console.error(`--${name}: expected ${min} to ${max}, got ${JSON.stringify(values[/** @type {"rounds"} */ (name)])}`);
		process.exit(2);
	}
	return value;
}
const options = {
	rounds: numberOption("rounds", 1, 20),
	seconds: numberOption("seconds", 1, 60),
	oneSeconds: numberOption("one-seconds", 1, 60),
	delayMs: numberOption("delay-ms", 0, 1000),
	isolates: numberOption("isolates", 1, 16),
	orgs: numberOption("orgs", 1, 8),
	burst: numberOption("burst", 1, 10),
	distances: distancesOption(values.distances),
	limiterFailure: limiterFailureOption(values["limiter-failure"]),
};
/** @param {string} text */
function limiterFailureOption(text) {
	if (text !== "closed" && text !== "open" && text !== "local") {
		console.error(`--limiter-failure: expected closed, open or local, got ${JSON.stringify(text)}`);
		process.exit(2);
	}
	return text;
}
/** @param {string} text e.g. "0,30,80": distinct whole ms from 0 to 1000 */
function distancesOption(text) {
	const list = [...new Set(text.split(",").map((part) => Number(part.trim())))];
	if (list.length === 0 || list.length > 5 || !list.every((ms) => Number.isInteger(ms) && ms >= 0 && ms <= 1000)) {
		console.error(`--distances: expected 1 to 5 comma-separated whole ms from 0 to 1000, got ${JSON.stringify(text)}`);
		process.exit(2);
	}
	return list;
}
const sections = positionals.length > 0 ? [...new Set(positionals)] : DEFAULT_SECTIONS;
const write = !values["no-write"] && !process.env.BENCH_GUARD_ENTRY;

/** Whatever is running now (workerd processes, the profiler), stopped on a signal or a failure. */
/** @type {Set<{ dispose: () => Promise<void> }>} */
const live = new Set();
const stopped = new AbortController();

/**
 * A signal that aborts when the section's upload budget runs out or the run is stopped.
 * @returns {{ signal: AbortSignal, done: () => void }}
 */
function sectionBudget() {
	const budget = new AbortController();
	const timer = setTimeout(() => budget.abort(`the section's ${BUDGET_MS / 60_000}-minute upload budget ran out`), BUDGET_MS);
	return { signal: AbortSignal.any([budget.signal, stopped.signal]), done: () => clearTimeout(timer) };
}
const startedAt = performance.now();

/** @param {string} message */
function progress(message) {
	process.stderr.write(`[bench ${((performance.now() - startedAt) / 1000).toFixed(0).padStart(3)} s] ${message}\n`);
}

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

const PREAMBLE = `# Benchmarks

Written by the benchmark scripts (\`npm run bench\`); each section belongs to one benchmark, which
rewrites only its own section. Numbers are from one run on the machine each section names;
speed is always a ratio to a baseline measured in the same run.
`;

/**
 * Prints a section and, unless told not to, writes it into BENCHMARKS.md.
 * @param {string} heading
 * @param {string} text
 */
function publish(heading, text) {
	console.log(`${heading}\n\n${text}`);
	if (write) writeSection(resolve(ROOT, "BENCHMARKS.md"), heading, text, PREAMBLE);
}

/** @param {string} description */
function stamp(description) {
	return `_Written by \`npm run bench\` on ${new Date().toISOString()}; ${description}; 1-minute load average ${load()} at the end._`;
}

/** The profiler needs a WebSocket client, which Node 20 has only behind a flag: a child process. */
function runProfile() {
	return new Promise((done, fail) => {
		const child = spawn(process.execPath, ["--experimental-websocket", "--no-warnings", resolve(ROOT, "scripts/bench/profile.mjs")], { stdio: "inherit" });
		const handle = { dispose: async () => void child.kill("SIGTERM") };
		live.add(handle);
		child.on("error", fail);
		child.on("exit", (code) => {
			live.delete(handle);
			if (code === 0) done(undefined);
			else fail(new Error(`the profiler exited with ${code}`));
		});
	});
}

async function main() {
	const description = machine();
	const loadAtStart = load();
	progress(`machine: ${description}; load ${loadAtStart}; sections ${sections.join(", ")}`);
	let failed = false;
	for (const section of sections) {
		progress(`section ${section}`);
		if (section === "caps") {
			const budget = sectionBudget();
			const text = await capsBench({ signal: budget.signal, progress, live, machine: description, loadAtStart, load, startedAt: performance.now() }).finally(budget.done);
			publish(CAPS_SECTION, text);
		} else if (section === "limits") {
			const { text, failed: limitsFailed } = await limiterBench({ rounds: options.rounds, progress });
			failed ||= limitsFailed;
			publish(LIMITS_SECTION, `${stamp(description)}\n\n${text}`);
		} else if (section === "small") {
			const small = await smallBench({ seconds: options.seconds, oneSeconds: options.oneSeconds, rounds: options.rounds, progress, live });
			failed ||= small.failed;
			publish(SMALL_SECTION, `${stamp(`${description}; 1-minute load average ${loadAtStart} at the start`)}\n\n${small.text}`);
		} else if (section === "distant") {
			const distant = await distantBench({ delayMs: options.delayMs, seconds: Math.max(2, options.oneSeconds), rounds: options.rounds, progress, live });
			failed ||= distant.failed;
			publish(DISTANT_SECTION, `${stamp(description)}\n\n${distant.text}`);
		} else if (section === "interposed") {
			const budget = sectionBudget();
			const interposed = await interposedBench({ progress, live, signal: budget.signal }).finally(budget.done);
			failed ||= interposed.failed;
			publish(INTERPOSED_SECTION, `${stamp(description)}\n\n${interposed.text}`);
		} else if (section === "bombs") {
			const budget = sectionBudget();
			const bombs = await bombsBench({ progress, live, signal: budget.signal }).finally(budget.done);
			failed ||= bombs.failed;
			publish(BOMBS_SECTION, `${stamp(description)}\n\n${bombs.text}`);
		} else if (section === "peers") {
			const peers = await peersBench({ rounds: options.rounds, oneSeconds: options.oneSeconds, progress, live });
			failed ||= peers.failed;
			publish(PEERS_SECTION, `${stamp(description)}\n\n${peers.text}`);
		} else if (section === "profile") {
			await runProfile();
		} else if (section === "locations") {
			const budget = sectionBudget();
			const locations = await locationsBench({
				rounds: options.rounds,
				isolates: options.isolates,
				orgs: options.orgs,
				burst: options.burst,
				distances: options.distances,
				limiterFailure: options.limiterFailure,
				progress,
				live,
				signal: budget.signal,
			}).finally(budget.done);
			failed ||= locations.failed;
			publish(LOCATIONS_SECTION, `${stamp(description)}\n\n${locations.text}`);
		}
	}
	if (!write) progress(values["no-write"] ? "--no-write: BENCHMARKS.md left alone" : "BENCH_GUARD_ENTRY is set: BENCHMARKS.md left alone");
	if (failed) {
		process.exitCode = 1;
		progress("FAILED: a run had errors (see the tables)");
	}
	progress(`done (${((performance.now() - startedAt) / 1000).toFixed(0)} s)`);
}

for (const signal of /** @type {const} */ (["SIGINT", "SIGTERM"])) {
	process.once(signal, async () => {
		stopped.abort(`stopped by ${signal}`);
		await Promise.all([...live].map((subject) => subject.dispose().catch(() => undefined)));
		process.exit(130);
	});
}
try {
	await main();
} catch (error) {
	process.exitCode = 1;
	console.error(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : error}`);
} finally {
	await Promise.all([...live].map((subject) => subject.dispose().catch(() => undefined)));
}
