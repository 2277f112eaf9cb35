#!/usr/bin/env node
// Side by side: the guard as it is in the working tree against the guard at an earlier commit,
// both in one limiter mode, each in its own workerd in front of ONE origin reached by URL (as in
// the peers bench), with a bare Worker as the baseline, over interleaved rounds. What a change to
// the request path gives, measured in one run on one machine: front CPU per request (workerd's
// user + system time from /proc over fixed-count runs at 16 connections), req/s × bare, and the p50
// added at one connection against bare.
//
//   node scripts/bench/ab.mjs --base REV [--base REV2 ...] [--mode lease|exact] [--rounds 5] [--count 3000]
//        [--one-seconds 2] [--request post|get|both] [--asset-router]
//
// The base is checked out into a detached git worktree under .build/ (node_modules linked from this
// checkout) and bundled as for deployment; both guards get this checkout's wrangler.toml. Every
// response is checked as in the peers bench. Prints a table; writes nothing.
import { execFileSync } from "node:child_process";
import { existsSync, symlinkSync } from "node:fs";
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { buildWorker, ROOT } from "../lib/build-worker.mjs";
import { PEERS_REQUESTS, peersPhases } from "./peers.mjs";
import { table } from "./report.mjs";
import { interleavedRounds, perRound, spread } from "./rounds.mjs";
import { prepareSmall, startSmallOrigin, startSmallSubject } from "./small-stack.mjs";

process.env.WRANGLER_SEND_METRICS = "false";

const { values } = parseArgs({
	options: {
		base: { type: "string", multiple: true },
		mode: { type: "string", default: "lease" },
		rounds: { type: "string", default: "5" },
		count: { type: "string", default: "3000" },
		"one-seconds": { type: "string", default: "2" },
		request: { type: "string", default: "both" },
		"asset-router": { type: "boolean", default: false },
	},
});
if (values.base === undefined || values.base.length === 0 || !["lease", "exact"].includes(values.mode) || !["post", "get", "both"].includes(values.request)) {
	console.error("usage: node scripts/bench/ab.mjs --base REV [--mode lease|exact] [--rounds N] [--count N] [--one-seconds S] [--request post|get|both]");
	process.exit(2);
}
const rounds = Number(values.rounds);
const count = Number(values.count);
const oneSeconds = Number(values["one-seconds"]);
for (const [name, value] of Object.entries({ rounds, count, oneSeconds })) {
	if (!Number.isFinite(value) || value <= 0) {
		console.error(`--${name}: expected a positive number`);
		process.exit(2);
	}
}
const mode = /** @type {"lease" | "exact"} */ (values.mode);

/**
 * The guard at `rev`, bundled: a detached worktree under .build/ (reused when it is at that commit).
 * @param {string} rev
 */
async function bundleAt(rev) {
	const commit = execFileSync("git", ["rev-parse", "--verify", `${rev}^{commit}`], { cwd: ROOT, encoding: "utf8" }).trim();
	const tree = resolve(ROOT, ".build", `ab-base-${commit.slice(0, 12)}`);
	if (!existsSync(tree)) {
		execFileSync("git", ["worktree", "add", "--detach", tree, commit], { cwd: ROOT, stdio: "ignore" });
		symlinkSync(resolve(ROOT, "node_modules"), resolve(tree, "node_modules"), "dir");
	}
	const outfile = await buildWorker(resolve(tree, "src/index.ts"), `ab-base-${commit.slice(0, 12)}`);
	return { commit, outfile };
}

const progress = (/** @type {string} */ message) => console.error(`[ab] ${message}`);
const loadAtStart = loadavg();
const [prepared, ...bases] = await Promise.all([prepareSmall(), ...values.base.map(bundleAt)]);
const BARE = "bare Worker";
const BASES = bases.map((base) => ({ name: `guard at ${base.commit.slice(0, 7)}, ${mode}`, bundle: base.outfile }));
const BASE = BASES[0]?.name ?? "";
const HEAD = `guard in the working tree, ${mode}`;
/** `--asset-router`: every guard behind Miniflare's asset router Worker, as `wrangler dev` runs it (small-stack.mjs leaves it out). */
const assetRouter = values["asset-router"] ? { workerOptions: { assets: prepared.guardOptions.assets } } : {};
/** @type {Array<{ dispose: () => Promise<void> }>} */
const started = [];
try {
	const origin = await startSmallOrigin(prepared);
	started.push(origin);
	const originUrl = origin.url.href;
	/** @type {import("./rounds.mjs").Subject[]} */
	const subjects = [];
	for (const [name, spec, bundle] of /** @type {Array<[string, { front: "bare" | "guard", mode?: "lease" | "exact" }, string]>} */ ([
		[BARE, { front: "bare" }, prepared.guard],
		...BASES.map((base) => [base.name, { front: "guard", mode, ...assetRouter }, base.bundle]),
		[HEAD, { front: "guard", mode, ...assetRouter }, prepared.guard],
	])) {
		const subject = await startSmallSubject({ name, ...spec, originUrl }, { ...prepared, guard: bundle });
		started.push(subject);
		subjects.push({ name, url: subject.url, pid: subject.pid, requireRequestId: spec.front === "guard" });
	}
	const requests = PEERS_REQUESTS.filter((request) => values.request === "both" || request.method.toLowerCase() === values.request);
	const results = await interleavedRounds({
		subjects,
		requests,
		phases: peersPhases(count, oneSeconds),
		rounds,
		warmupSeconds: 1,
		progress,
	});
	const rows = [];
	for (const request of requests) {
		const by = results[request.name] ?? {};
		for (const name of [BARE, ...BASES.map((base) => base.name), HEAD]) {
			const s16 = by[name]?.["16"];
			const s1 = by[name]?.["1"];
			if (!s16 || !s1 || s16.failure || s1.failure) {
				rows.push([`\`${request.name}\``, name, `**FAILED**: ${s16?.failure ?? s1?.failure ?? "not run"}`, "", "", "", ""]);
				continue;
			}
			const cpu = s16.runs.map((run) => run.cpuUs);
			const bareCpu = by[BARE]?.["16"];
			const added = bareCpu ? perRound(s16, bareCpu, (run, b) => run.cpuUs - b.cpuUs) : [];
			const vsBase = name !== BARE && name !== BASE && by[BASE]?.["16"] ? perRound(s16, /** @type {any} */ (by[BASE]?.["16"]), (run, b) => run.cpuUs / b.cpuUs) : [];
			rows.push([
				`\`${request.name}\``,
				name,
				spread(cpu, 0, " µs"),
				name === BARE ? "(baseline)" : spread(added, 0, " µs"),
				name !== BARE && name !== BASE ? spread(vsBase, 2, "×") : "",
				name === BARE ? "1.00" : spread(perRound(s16, /** @type {any} */ (by[BARE]?.["16"]), (run, b) => run.rps / b.rps), 2),
				name === BARE ? "(baseline)" : spread(perRound(s1, /** @type {any} */ (by[BARE]?.["1"]), (run, b) => run.p50 - b.p50), 2, " ms"),
			]);
		}
	}
	const loadAtEnd = loadavg();
	console.log(`rounds ${rounds}, ${count} responses per 16-connection run, ${oneSeconds} s at 1 connection; load ${loadAtStart[0]?.toFixed(2)} → ${loadAtEnd[0]?.toFixed(2)}`);
	console.log(
		table(
			["Request", "Subject", "front CPU per request, median [min–max]", "CPU added over bare", "÷ the first base (CPU)", "req/s × bare", "added p50 at 1 connection vs bare"],
			rows,
		),
	);
} finally {
	await Promise.all(started.map((subject) => subject.dispose().catch(() => undefined)));
}
