#!/usr/bin/env node
// The primitives experiment (issue 13): what each runtime primitive a proxy uses costs on the small
// requests, measured with minimal Workers (scripts/bench/primitives-worker.js) against a bare
// pass-through in front of the small-request benchmark's origin: workerd CPU per request and
// req/s at 16 connections, in interleaved rounds. A budget sheet for the guard's request path: the
// goals of issue 13 leave the guard about (1/ratio − 1) × bare's CPU per request.
//
//   node scripts/bench/primitives.mjs [--seconds 3] [--rounds 3] [--steps rebuild,rewrap ...]
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { median, table } from "./report.mjs";
import { interleavedRounds, perRound, spread } from "./rounds.mjs";
import { SMALL_REQUESTS } from "./small.mjs";
import { prepareSmall, startSmallSubject } from "./small-stack.mjs";

process.env.WRANGLER_SEND_METRICS = "false";
const HERE = fileURLToPath(new URL(".", import.meta.url));

const DEFAULT_STEPS = [
	"",
	"rebuild",
	"rewrap",
	"pipe",
	"pump",
	"signal",
	"digest",
	"log",
	"wait",
	"asyncs",
	"rebuild,rewrap,pump,signal,digest,log,wait,asyncs",
];

const { values } = parseArgs({
	options: { seconds: { type: "string", default: "3" }, rounds: { type: "string", default: "3" }, steps: { type: "string", multiple: true } },
});
const stepsList = values.steps ?? DEFAULT_STEPS;
const prepared = await prepareSmall();
/** @type {import("./small-stack.mjs").SmallSubject[]} */
const subjects = [];
try {
	subjects.push(await startSmallSubject({ name: "bare", front: "bare" }, prepared));
	for (const steps of stepsList) {
		const name = steps === "" ? "await fetch(request), return it" : steps;
		subjects.push(await startSmallSubject({ name, front: "bare", workerOptions: { scriptPath: resolve(HERE, "primitives-worker.js"), bindings: { STEPS: steps } } }, prepared));
	}
	const results = await interleavedRounds({
		subjects: subjects.map((s) => ({ name: s.spec.name, url: s.url, requireRequestId: false, pid: s.pid })),
		requests: SMALL_REQUESTS,
		phases: [{ name: "16", connections: 16, seconds: Number(values.seconds) }],
		rounds: Number(values.rounds),
		warmupSeconds: 1,
		progress: (message) => process.stderr.write(`${message}\n`),
	});
	const rows = [];
	for (const request of SMALL_REQUESTS) {
		const bare = results[request.name]?.bare?.["16"];
		for (const subject of subjects) {
			const series = results[request.name]?.[subject.spec.name]?.["16"];
			if (!series || series.failure) {
				rows.push([`\`${request.name}\``, subject.spec.name, `FAILED: ${series?.failure ?? "not run"}`, "—", "—"]);
				continue;
			}
			rows.push([
				`\`${request.name}\``,
				subject.spec.name,
				spread(perRound(series, bare, (run, base) => run.rps / base.rps), 2, "×"),
				`${median(series.runs.map((run) => run.cpuUs)).toFixed(0)} µs`,
				spread(perRound(series, bare, (run, base) => run.cpuUs - base.cpuUs), 0, " µs"),
			]);
		}
	}
	console.log(table(["Request", "Worker (steps)", "req/s ratio to bare, median [min–max]", "workerd CPU per request", "CPU added per request vs bare, same round"], rows));
} finally {
	await Promise.all(subjects.map((subject) => subject.dispose().catch(() => undefined)));
}
