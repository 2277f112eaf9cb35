#!/usr/bin/env node
// Where a small request's time goes: CPU-profiles workerd's isolates (the front Worker, Miniflare's
// entry Worker, the origin, the KV simulator) through the DevTools inspector while autocannon drives
// one subject of the small-request benchmark, and measures the workerd process's CPU time per
// request from /proc. Prints a summary; writes the raw profiles (.cpuprofile, loadable in Chrome
// DevTools) to --out.
//
//   node --experimental-websocket scripts/bench/profile.mjs [--subject bare|exact|lease]
//        [--request post|get] [--seconds 8] [--connections 16] [--interval-us 250] [--top 25] [--out DIR]
//        [--all-targets]  (also Miniflare's entry Worker, the origin and the KV simulator)
//
// Also: `npm run bench -- profile` (every subject, both requests). To profile the load generator
// too, add Node's own profiler: node --experimental-websocket --cpu-prof --cpu-prof-dir=DIR ...
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { profileTargets, sourceMapper, summarise } from "./cpu-profile.mjs";
import { drive } from "./load.mjs";
import { processCpuMs } from "./rounds.mjs";
import { freePort } from "../lib/free-port.mjs";
import { SMALL_REQUESTS } from "./small.mjs";
import { prepareSmall, startSmallSubject } from "./small-stack.mjs";

process.env.WRANGLER_SEND_METRICS = "false";

/** @type {Record<string, import("./small-stack.mjs").SmallSubjectSpec>} */
const SUBJECTS = {
	bare: { name: "bare", front: "bare" },
	exact: { name: "guard, exact", front: "guard", mode: "exact" },
	lease: { name: "guard, lease", front: "guard", mode: "lease" },
};

/**
 * Profiles one subject under one request; returns the summary's text.
 * @param {{ subject: string, request: string, seconds: number, connections: number, intervalUs: number, top: number, out?: string, allTargets?: boolean }} options
 */
export async function profileOne({ subject: subjectName, request: requestName, seconds, connections, intervalUs, top, out, allTargets = false }) {
	const spec = SUBJECTS[subjectName];
	const request = SMALL_REQUESTS.find((candidate) => candidate.method.toLowerCase() === requestName.toLowerCase());
	if (!spec || !request) throw new Error(`unknown subject ${subjectName} or request ${requestName}`);
	const prepared = await prepareSmall();
	const port = await freePort();
	const subject = await startSmallSubject(spec, prepared, { inspectorPort: port });
	try {
		const requireRequestId = spec.front === "guard";
		const warm = await drive({ url: subject.url, request, connections, seconds: 2, requireRequestId });
		if (warm.failures.length > 0) throw new Error(`warm-up failed: ${warm.failures.join("; ")}`);
		const front = spec.front === "guard" ? "core:user:edge-guard" : "core:user:bench-bare";
		// Each profiler samples the one thread all of workerd's isolates share; one at a time by default.
		const ids = allTargets ? [front, "core:entry", "core:user:bench-messages-origin", ...(spec.front === "guard" ? ["kv:ns"] : [])] : [front];
		/** @type {import("./load.mjs").LoadResult | undefined} */
		let run;
		let cpu = 0;
		const profiles = await profileTargets(port, ids, intervalUs, async () => {
			const before = processCpuMs(subject.pid);
			run = await drive({ url: subject.url, request, connections, seconds, requireRequestId });
			cpu = processCpuMs(subject.pid) - before;
		});
		if (!run) throw new Error("no run");
		if (run.failures.length > 0) throw new Error(`the profiled run failed: ${run.failures.join("; ")}`);
		const lines = [
			`### ${spec.name}, ${request.name}: ${run.responses} responses in ${run.seconds.toFixed(1)} s (${run.rps.toFixed(0)}/s at ${connections} connections); workerd process CPU ${((cpu / run.responses) * 1000).toFixed(0)} µs per request (${(cpu / 1000).toFixed(2)} s CPU); the load generator (this process) used ${(run.clientCpuMs / run.seconds / 10).toFixed(0)}% of one core`,
		];
		const mapFrame = spec.front === "guard" ? sourceMapper(prepared.guard) : undefined;
		for (const id of ids) {
			const profile = profiles[id];
			if (!profile) continue;
			if (out) {
				mkdirSync(out, { recursive: true });
				writeFileSync(join(out, `${subjectName}-${requestName}-${id.replace(/[^a-z0-9-]+/gi, "_")}.cpuprofile`), JSON.stringify(profile));
			}
			const summary = summarise(profile, id === front ? mapFrame : undefined);
			lines.push("", `#### ${id}: ${summary.busyMs.toFixed(0)} ms busy (${((summary.busyMs / run.responses) * 1000).toFixed(0)} µs per request), ${summary.idleMs.toFixed(0)} ms idle`);
			if (id !== front) {
				lines.push(summary.self.slice(0, 6).map((entry) => `  ${(entry.share * 100).toFixed(1).padStart(5)}%  ${entry.name}`).join("\n"));
				continue;
			}
			lines.push("self time, by function:");
			lines.push(summary.self.slice(0, top).map((entry) => `  ${(entry.share * 100).toFixed(1).padStart(5)}%  ${((entry.ms / run.responses) * 1000).toFixed(1).padStart(6)} µs/req  ${entry.name}`).join("\n"));
			lines.push("self time, by file:");
			lines.push(summary.files.slice(0, top).map((entry) => `  ${(entry.share * 100).toFixed(1).padStart(5)}%  ${((entry.ms / run.responses) * 1000).toFixed(1).padStart(6)} µs/req  ${entry.name}`).join("\n"));
			lines.push("inclusive time, by function:");
			lines.push(summary.inclusive.slice(0, top).map((entry) => `  ${(entry.share * 100).toFixed(1).padStart(5)}%  ${((entry.ms / run.responses) * 1000).toFixed(1).padStart(6)} µs/req  ${entry.name}`).join("\n"));
		}
		return lines.join("\n");
	} finally {
		await subject.dispose();
	}
}

const isMain = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
	const { values } = parseArgs({
		options: {
			subject: { type: "string", multiple: true },
			request: { type: "string", multiple: true },
			seconds: { type: "string", default: "8" },
			connections: { type: "string", default: "16" },
			"interval-us": { type: "string", default: "250" },
			"all-targets": { type: "boolean", default: false },
			top: { type: "string", default: "25" },
			out: { type: "string" },
		},
	});
	try {
		for (const subject of values.subject ?? ["bare", "exact", "lease"]) {
			for (const request of values.request ?? ["post", "get"]) {
				console.log(
					await profileOne({
						subject,
						request,
						seconds: Number(values.seconds),
						connections: Number(values.connections),
						intervalUs: Number(values["interval-us"]),
						top: Number(values.top),
						out: values.out,
						allTargets: values["all-targets"],
					}),
				);
				console.log("");
			}
		}
	} catch (error) {
		console.error(`profile failed: ${error instanceof Error ? (error.stack ?? error.message) : error}`);
		process.exitCode = 1;
	}
}
