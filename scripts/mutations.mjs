#!/usr/bin/env node
// `npm run mutations [-- --only 1,3] [--baseline]`: issue 21's ten mutations, each applied alone to
// today's source, with only the tests that should kill it run (`npx vitest run <file> -t <name>`).
// Every mutation is an exact string replacement that must be found exactly once (a clear error
// when the code moved); the file is restored whatever happens (try/finally, and on Ctrl-C or
// SIGTERM). Refuses to start when a file it would mutate has uncommitted changes. Prints a table
// (mutation, file, tests run, result) and exits 1 if any mutation survived.
//
// `--baseline` first runs each mutation's tests on the unmutated code: they must pass there, or a
// "killed" would prove nothing.
import { spawn, execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

process.env.WRANGLER_SEND_METRICS = "false";
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * @typedef {{ file: string; name?: string }} TestRun a test file, and a `-t` name pattern within it
 * @typedef {{ id: number; what: string; file: string; from: string; to: string; tests: TestRun[] }} Mutation
 */

/** @type {Mutation[]} */
const MUTATIONS = [
	{
		id: 1,
		what: "a claim's growth is checked but never taken from the buckets (concurrent uploads each see a full bucket)",
		file: "src/limits/usage-object/usage-object.ts",
		from: "if (units !== 0) buckets.take(spec, units, now);",
		to: "if (units !== 0 && false) buckets.take(spec, units, now);",
		tests: [{ file: "test/e2e/hostile.test.ts", name: "concurrent chunked" }],
	},
	{
		id: 2,
		what: "SpendLedger.prune keeps the old period's row in storage",
		file: "src/limits/spend/spend-ledger.ts",
		from: '\t\t\tthis.sql.exec("DELETE FROM spend WHERE scope = ? AND period = ?", key.slice(0, split), period);\n',
		to: "",
		tests: [{ file: "test/limits/spend.test.ts", name: "period has turned" }],
	},
	{
		id: 3,
		what: "the counting pump's slices ignore the cap (read up to a full slice past it)",
		file: "src/lib/counting-pump.ts",
		from: "slices(source, sliceMax, () => Math.min(sliceMax, limit - bytes + 1))",
		to: "slices(source, sliceMax, () => sliceMax)",
		tests: [{ file: "test/body-limit.test.ts", name: "streamed length over the cap" }],
	},
	{
		id: 4,
		what: "the console link counts a refusal the usage object already counted (double-counted refusals)",
		file: "src/limits/console/console-link.ts",
		from: "this.tally.refused(orgId, refusalReason(decision), requestId, now, !objectCounted);",
		to: "this.tally.refused(orgId, refusalReason(decision), requestId, now, true);",
		tests: [{ file: "test/e2e/console.test.ts", name: "429 loop" }],
	},
	{
		id: 5,
		what: "a request refused after admission (413) gives its request unit back",
		file: "src/limits/claims/request-claim.ts",
		from: 'if (end.kind === "not-received") return this.#usage(',
		to: 'if (end.kind === "not-received" || end.kind === "refused") return this.#usage(',
		tests: [{ file: "test/e2e/hostile.test.ts", name: "finding 4" }],
	},
	{
		id: 6,
		what: "the guard ignores response_timeout_seconds while waiting for the origin's answer",
		file: "src/pipeline/forward.ts",
		from: "first = await within(Promise.race([fetching, body.failed]), route.responseTimeoutMs);",
		to: "first = await within(Promise.race([fetching, body.failed]), 600_000);",
		tests: [{ file: "test/e2e/overload.test.ts" }],
	},
	{
		id: 7,
		what: "the test origin (sink) fails every lookup of a record it holds (a sink failure)",
		file: "test/fixtures/sink-origin.ts",
		from: "return Response.json(found);",
		to: 'return new Response("sink failure", { status: 500 });',
		tests: [
			{ file: "test/body-limit.test.ts", name: "streamed length over the cap" },
			{ file: "test/long-requests.test.ts", name: "refuses" },
		],
	},
	{
		id: 8,
		what: "the usage object never sends its revocation list down to isolates",
		file: "src/limits/console/object-console.ts",
		from: 'if (revocations === undefined || typeof answer !== "object" || answer === null) return answer',
		to: 'if (true || revocations === undefined || typeof answer !== "object" || answer === null) return answer',
		tests: [{ file: "test/admin/revocation.test.ts", name: "exact mode" }, { file: "test/admin/keys.test.ts", name: "disabled key" }],
	},
	{
		id: 9,
		what: "Content-Length stops dropping leading zeros (refuses 042 and a 17-digit 0…042)",
		file: "src/lib/content-length.ts",
		from: '.replace(/^[ \\t]+|[ \\t]+$/g, "").replace(/^0+(?=[0-9])/, "")',
		to: '.replace(/^[ \\t]+|[ \\t]+$/g, "")',
		tests: [{ file: "test/content-length.property.test.ts", name: "agrees with" }],
	},
	{
		id: 10,
		what: "hostile-kit's sentinel() asks with a key the guard refuses (it synchronises nothing)",
		file: "test/e2e/hostile-kit.ts",
		from: '"x-api-key": DEMO_KEY, "anthropic-version": "2023-06-01", [SENTINEL_HEADER]: "1"',
		to: '"x-api-key": "sk-demo-not-a-key", "anthropic-version": "2023-06-01", [SENTINEL_HEADER]: "1"',
		tests: [{ file: "test/e2e/hostile.test.ts", name: "finding 2" }],
	},
];

const { values } = parseArgs({ options: { only: { type: "string" }, baseline: { type: "boolean", default: false } } });
const only = values.only === undefined ? undefined : new Set(values.only.split(",").map(Number));
const chosen = MUTATIONS.filter((mutation) => only === undefined || only.has(mutation.id));
if (chosen.length === 0) fail(`--only ${values.only}: no such mutation (1 to ${MUTATIONS.length})`);

// Every mutation must apply before any runs: a moved string is a clear error, not a silent survivor.
const files = [...new Set(chosen.map((mutation) => mutation.file))];
const dirty = execFileSync("git", ["status", "--porcelain", "--", ...files], { cwd: ROOT, encoding: "utf8" }).trim();
if (dirty !== "") fail(`refusing to mutate files with uncommitted changes (commit or stash them first):\n${dirty}`);
for (const mutation of chosen) {
	const found = occurrences(readFileSync(resolve(ROOT, mutation.file), "utf8"), mutation.from);
	if (found !== 1) fail(`mutation ${mutation.id}: expected its text exactly once in ${mutation.file}, found it ${found} times (the code moved?):\n  ${JSON.stringify(mutation.from)}`);
}

/** The file being mutated and its original text, restored on every way out. */
let applied;
function restore() {
	if (applied === undefined) return;
	writeFileSync(applied.path, applied.original);
	applied = undefined;
}
process.on("exit", restore);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
	process.on(signal, () => {
		current?.kill("SIGTERM");
		restore();
		console.error(`\n${signal}: the mutated file is restored`);
		process.exit(130);
	});
}
/** @type {import("node:child_process").ChildProcess | undefined} */
let current;

const rows = [];
for (const mutation of chosen) {
	const label = mutation.tests.map((run) => (run.name === undefined ? run.file : `${run.file} -t "${run.name}"`)).join("; ");
	if (values.baseline) {
		console.log(`\n== baseline for ${mutation.id}: ${label}`);
		const passed = await runTests(mutation.tests, true);
		if (!passed) {
			rows.push({ mutation, label, result: "BASELINE FAILS" });
			continue;
		}
	}
	console.log(`\n== mutation ${mutation.id}: ${mutation.what}\n   ${mutation.file}; running ${label}`);
	const path = resolve(ROOT, mutation.file);
	const original = readFileSync(path, "utf8");
	let killed;
	try {
		applied = { path, original };
		writeFileSync(path, original.replace(mutation.from, () => mutation.to));
		killed = !(await runTests(mutation.tests, false));
	} finally {
		restore();
	}
	rows.push({ mutation, label, result: killed ? "killed" : "SURVIVED" });
	console.log(`   -> ${killed ? "killed" : "SURVIVED"}`);
}

console.log("\n| # | mutation | file | tests run | result |\n|---|---|---|---|---|");
for (const { mutation, label, result } of rows) console.log(`| ${mutation.id} | ${mutation.what} | ${mutation.file} | ${label} | ${result} |`);
process.exit(rows.every((row) => row.result === "killed") ? 0 : 1);

/**
 * Runs each test selection in turn; true when all passed. On the mutated code the first failure is
 * enough (the rest are not run).
 * @param {TestRun[]} runs
 * @param {boolean} all
 */
async function runTests(runs, all) {
	let passed = true;
	for (const run of runs) {
		const args = ["vitest", "run", run.file, ...(run.name === undefined ? [] : ["-t", run.name])];
		const code = await new Promise((done) => {
			current = spawn("npx", args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" } });
			let output = "";
			current.stdout?.on("data", (chunk) => {
				output += chunk;
			});
			current.stderr?.on("data", (chunk) => {
				output += chunk;
			});
			current.on("close", (exit) => {
				current = undefined;
				// The summary lines say what ran: a selection that matched no test proves nothing.
				// The failed tests and the first lines of why: a kill should be for the mutation's own reason.
				const summary = output
					.split("\n")
					.filter((line) => /Test Files|Tests {2}|×|^(AssertionError|Error|TypeError)\b/.test(line.trim()))
					.slice(0, 16);
				console.log(summary.map((line) => `   ${line.trim()}`).join("\n"));
				if (/No test files found|No test found/.test(output)) {
					console.error(`   ${run.file} -t ${JSON.stringify(run.name)} matched no test: fix the mutation's test selection`);
					done(-1);
					return;
				}
				done(exit ?? 1);
			});
		});
		if (code === -1) throw new Error("a test selection matched no test");
		if (code !== 0) {
			passed = false;
			if (!all) break;
		}
	}
	return passed;
}

/** @param {string} text @param {string} part */
function occurrences(text, part) {
	let count = 0;
	for (let at = text.indexOf(part); at !== -1; at = text.indexOf(part, at + 1)) count++;
	return count;
}

/** @param {string} problem */
function fail(problem) {
	console.error(problem);
	process.exit(2);
}
