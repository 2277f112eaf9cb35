// What a distant usage object costs (issue 13): the guard in exact and lease mode with every
// usage-object call delayed (scripts/bench/distant-usage-worker.js), against the same modes with
// the object next door and a bare pass-through, at one connection, in interleaved rounds.
import { interleavedRounds, perRound, spread } from "./rounds.mjs";
import { median, table } from "./report.mjs";
import { SMALL_REQUESTS } from "./small.mjs";
import { prepareSmall, startSmallSubject } from "./small-stack.mjs";

export const DISTANT_SECTION = "## Distant usage object (issue 13)";

/**
 * @param {{ delayMs: number, seconds: number, rounds: number, progress: (message: string) => void, live?: Set<{ dispose: () => Promise<void> }> }} options
 */
export async function distantBench({ delayMs, seconds, rounds, progress, live }) {
	/** @type {import("./small-stack.mjs").SmallSubjectSpec[]} */
	const specs = [
		{ name: "bare", front: "bare" },
		{ name: "exact, object next door", front: "guard", mode: "exact" },
		{ name: "lease, object next door", front: "guard", mode: "lease" },
		{ name: `exact, object ${delayMs} ms away`, front: "guard", mode: "exact", usageDelayMs: delayMs },
		{ name: `lease, object ${delayMs} ms away`, front: "guard", mode: "lease", usageDelayMs: delayMs },
	];
	const prepared = await prepareSmall();
	/** @type {import("./small-stack.mjs").SmallSubject[]} */
	const started = [];
	try {
		for (const spec of specs) {
			const subject = await startSmallSubject(spec, prepared);
			started.push(subject);
			live?.add(subject);
		}
		const results = await interleavedRounds({
			subjects: started.map((s) => ({ name: s.spec.name, url: s.url, requireRequestId: s.spec.front === "guard", pid: s.pid })),
			requests: SMALL_REQUESTS,
			phases: [{ name: "1", connections: 1, seconds }],
			rounds,
			warmupSeconds: 1,
			progress,
		});
		let failed = false;
		const rows = [];
		for (const request of SMALL_REQUESTS) {
			const bare = results[request.name]?.bare?.["1"];
			for (const spec of specs) {
				const series = results[request.name]?.[spec.name]?.["1"];
				if (!series || series.failure) {
					failed = true;
					rows.push([`\`${request.name}\``, spec.name, `**FAILED**: ${series?.failure ?? "not run"}`, "—", "—"]);
					continue;
				}
				const p50 = median(series.runs.map((run) => run.p50));
				const p99 = median(series.runs.map((run) => run.p99));
				if (spec.front === "bare") {
					rows.push([`\`${request.name}\``, spec.name, `${p50.toFixed(2)} / ${p99.toFixed(2)} ms`, "—", "—"]);
					continue;
				}
				rows.push([
					`\`${request.name}\``,
					spec.name,
					`${p50.toFixed(2)} / ${p99.toFixed(2)} ms`,
					spread(perRound(series, bare, (run, base) => run.p50 - base.p50), 2, " ms"),
					spread(perRound(series, bare, (run, base) => run.p99 - base.p99), 2, " ms"),
				]);
			}
		}
		const method = `Method: the small-request benchmark's subjects (each alone in its own workerd through Miniflare, in front of the same Messages-shaped origin, limits too high to refuse) at **one keep-alive connection**, ${seconds} s per subject and request, ${rounds} rounds with the order rotated, after a 1 s warm-up at 16 connections: a bare pass-through; the guard in exact and in lease mode with its usage object in the same process; and the same two with the object "${delayMs} ms away": a bench-only entry (\`scripts/bench/distant-usage-worker.js\`) runs the guard unchanged with a \`UsageObject\` subclass whose every RPC call (\`admit\`, \`lease\`, \`settle\`) waits ${delayMs} ms before the real object runs it, standing in for the round trip to an object in another location. Exact mode calls the object once per request before forwarding (and once more after a Messages response, to settle, off the response's path); lease mode spends slices of allowance in the isolate and renews them ahead, in the background. Added: the subject's p50 (p99) minus bare's in the same round, median of the rounds [min–max]. Every response is checked (status 200, \`request-id\`).`;
		const text = `${method}\n\n${table(["Request", "Subject", "p50 / p99 at 1 connection", "p50 added (vs bare, same round)", "p99 added (vs bare, same round)"], rows)}\n`;
		return { text, failed };
	} finally {
		await Promise.all(
			started.map((subject) => {
				live?.delete(subject);
				return subject.dispose().catch((error) => progress(`could not stop ${subject.spec.name}: ${error}`));
			}),
		);
	}
}
