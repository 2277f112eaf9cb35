#!/usr/bin/env node
// `npm run ci:stress [-- --runs N] [--busy N] [--keep]`: CI on a busy machine (issue 21). Clones this
// checkout's HEAD into a fresh temporary directory (with `shared` beside it, as the repository expects),
// keeps every core busy with `node -e "for(;;){}"` loops, and runs `CI=true bash .ci/run` there N times
// in a row (default 2). Prints pass/fail and the duration of each run; exits 1 if any run failed. The
// busy loops are killed on every way out (normal end, failure, Ctrl-C, SIGTERM, an exception).
//
// Self-check without paying for CI: `CI_STRESS_COMMAND=true npm run ci:stress -- --runs 1` runs the
// given shell command instead of `bash .ci/run` (clone, busy loops and cleanup are the same).
import { spawn, execFileSync } from "node:child_process";
import { createWriteStream, existsSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

process.env.WRANGLER_SEND_METRICS = "false";

const { values } = parseArgs({
	options: {
		runs: { type: "string", default: "2" },
		busy: { type: "string", default: String(availableParallelism()) },
		keep: { type: "boolean", default: false },
	},
});
const runs = Number(values.runs);
const busy = Number(values.busy);
if (!Number.isInteger(runs) || runs < 1) usage(`--runs: expected a whole number from 1, got ${JSON.stringify(values.runs)}`);
if (!Number.isInteger(busy) || busy < 0) usage(`--busy: expected a whole number from 0, got ${JSON.stringify(values.busy)}`);

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const shared = resolve(repo, "..", "shared");
const command = process.env.CI_STRESS_COMMAND ?? "bash .ci/run";

const head = execFileSync("git", ["rev-parse", "HEAD"], { cwd: repo, encoding: "utf8" }).trim();
const root = mkdtempSync(join(tmpdir(), "edge-guard-ci-stress-"));
const checkout = join(root, "edge-guard");

/** @type {import("node:child_process").ChildProcess[]} */
const loops = [];
let cleaned = false;
/** Kills the busy loops (synchronously, so it also works from the `exit` event) and removes the clone. */
function cleanUp() {
	if (cleaned) return;
	cleaned = true;
	for (const loop of loops) {
		if (loop.exitCode === null && loop.signalCode === null) loop.kill("SIGKILL");
	}
	if (values.keep) console.log(`kept ${root}`);
	else {
		try {
			rmSync(root, { recursive: true, force: true, maxRetries: 5 });
		} catch (error) {
			console.warn(`could not remove ${root}: ${error instanceof Error ? error.message : error}`);
		}
	}
}
process.on("exit", cleanUp);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
	process.on(signal, () => {
		console.error(`\n${signal}: stopping`);
		// The run is a process group of its own (npm, vitest, workerd, chromium): end all of it.
		if (current?.pid !== undefined) {
			try {
				process.kill(-current.pid, "SIGTERM");
			} catch {}
		}
		cleanUp();
		process.exit(130);
	});
}
process.on("uncaughtException", (error) => {
	console.error(error);
	cleanUp();
	process.exit(1);
});

/** @type {import("node:child_process").ChildProcess | undefined} */
let current;

execFileSync("git", ["clone", "--quiet", "--no-checkout", repo, checkout], { stdio: "inherit" });
execFileSync("git", ["checkout", "--quiet", head], { cwd: checkout, stdio: "inherit" });
if (existsSync(shared)) symlinkSync(realpathSync(shared), join(root, "shared"));
else console.warn(`no ${shared}: the clone has no ../shared beside it`);
console.log(`clone of ${head.slice(0, 12)} in ${checkout}; ${busy} busy loop(s); ${runs} run(s) of: CI=true ${command}`);

for (let i = 0; i < busy; i++) {
	loops.push(spawn(process.execPath, ["-e", "for(;;){}"], { stdio: "ignore" }));
}

const results = [];
for (let run = 1; run <= runs; run++) {
	const log = join(root, `run-${run}.log`);
	const started = performance.now();
	const code = await runOnce(log);
	const seconds = (performance.now() - started) / 1000;
	results.push({ run, passed: code === 0, seconds, log });
	console.log(`run ${run}/${runs}: ${code === 0 ? "pass" : `FAIL (exit ${code})`} in ${seconds.toFixed(1)} s`);
	if (code !== 0) {
		values.keep = true;
		console.log(`  log: ${log}`);
	}
}

console.log("\nrun  result  seconds");
for (const { run, passed, seconds } of results) {
	console.log(`${String(run).padEnd(4)} ${(passed ? "pass" : "FAIL").padEnd(7)} ${seconds.toFixed(1).padStart(7)}`);
}
cleanUp();
process.exit(results.every((result) => result.passed) ? 0 : 1);

/**
 * One CI run in the clone, its output written to `log`.
 * @param {string} log
 * @returns {Promise<number>}
 */
function runOnce(log) {
	return new Promise((done) => {
		const out = createWriteStream(log);
		current = spawn("bash", ["-c", command], { cwd: checkout, env: { ...process.env, CI: "true" }, detached: true, stdio: ["ignore", "pipe", "pipe"] });
		current.stdout?.pipe(out, { end: false });
		current.stderr?.pipe(out, { end: false });
		current.on("close", (code, signal) => {
			current = undefined;
			out.end(() => done(code ?? (signal ? 128 : 1)));
		});
	});
}

/** @param {string} problem */
function usage(problem) {
	console.error(`${problem}\nusage: npm run ci:stress [-- --runs N] [--busy N] [--keep]`);
	process.exit(2);
}
