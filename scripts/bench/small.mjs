// The small-request benchmark (issue 13): what the guard costs on everyday traffic, a 3 KB
// `POST /v1/messages` and `GET /v1/models`, against a bare pass-through in front of the same origin.
// Three subjects, each in its own workerd: bare, the guard in exact mode, the guard in lease mode.
import { interleavedRounds, perRound, spread } from "./rounds.mjs";
import { median, table } from "./report.mjs";
import { messagesRequest } from "./messages-body.mjs";
import { DEMO_KEY, prepareSmall, startSmallSubject } from "./small-stack.mjs";

export const SMALL_SECTION = "## Small requests (issue 13)";

const VERSION = { "anthropic-version": "2023-06-01" };
const BODY = messagesRequest(3 * 1024);

/** The two everyday requests, with a valid demo key. */
export const SMALL_REQUESTS = [
	{ name: "POST /v1/messages", method: /** @type {const} */ ("POST"), path: "/v1/messages", headers: { ...VERSION, "x-api-key": DEMO_KEY, "content-type": "application/json" }, body: BODY },
	{ name: "GET /v1/models", method: /** @type {const} */ ("GET"), path: "/v1/models", headers: { ...VERSION, "x-api-key": DEMO_KEY } },
];

/** @type {import("./small-stack.mjs").SmallSubjectSpec[]} */
const SUBJECTS = [
	{ name: "bare", front: "bare" },
	{ name: "guard, exact", front: "guard", mode: "exact" },
	{ name: "guard, lease", front: "guard", mode: "lease" },
];

/** Ratio goals (median of per-round ratios to bare), per request and mode; issue 13. */
const RATIO_GOALS = {
	"POST /v1/messages": { "guard, exact": 0.45, "guard, lease": 0.6 },
	"GET /v1/models": { "guard, exact": 0.55, "guard, lease": 0.75 },
};
/** p50 added at one connection in lease mode, ms. */
const LEASE_ADDED_P50_GOAL = 0.5;

/**
 * @typedef {object} SmallOptions
 * @property {number} seconds each run at 16 connections
 * @property {number} oneSeconds each run at 1 connection
 * @property {number} rounds
 * @property {(message: string) => void} progress
 * @property {Set<{ dispose: () => Promise<void> }>} [live] where running subjects are kept while they run (stopped on a signal)
 */

/**
 * Runs the benchmark; returns its section's markdown, the table alone, and whether any run failed.
 * @param {SmallOptions} options
 */
export async function smallBench({ seconds, oneSeconds, rounds, progress, live }) {
	const prepared = await prepareSmall();
	/** @type {import("./small-stack.mjs").SmallSubject[]} */
	const started = [];
	try {
		for (const spec of SUBJECTS) {
			const subject = await startSmallSubject(spec, prepared);
			started.push(subject);
			live?.add(subject);
		}
		const results = await interleavedRounds({
			subjects: started.map((s) => ({ name: s.spec.name, url: s.url, requireRequestId: s.spec.front === "guard", pid: s.pid })),
			requests: SMALL_REQUESTS,
			phases: [
				{ name: "16", connections: 16, seconds },
				{ name: "1", connections: 1, seconds: oneSeconds },
			],
			rounds,
			warmupSeconds: 1,
			progress,
		});
		return report(results, { seconds, oneSeconds, rounds });
	} finally {
		await Promise.all(
			started.map((subject) => {
				live?.delete(subject);
				return subject.dispose().catch((error) => progress(`could not stop ${subject.spec.name}: ${error}`));
			}),
		);
	}
}

/**
 * @param {Awaited<ReturnType<typeof interleavedRounds>>} results
 * @param {{ seconds: number, oneSeconds: number, rounds: number }} setup
 */
function report(results, setup) {
	let failed = false;
	const rows = [];
	/** @type {Array<Array<string>>} */
	const goals = [];
	for (const request of SMALL_REQUESTS) {
		const bySubject = results[request.name] ?? {};
		const bare16 = bySubject.bare?.["16"];
		const bare1 = bySubject.bare?.["1"];
		for (const spec of SUBJECTS) {
			const s16 = bySubject[spec.name]?.["16"];
			const s1 = bySubject[spec.name]?.["1"];
			const failure = s16?.failure ?? s1?.failure;
			if (failure !== undefined || !s16 || !s1) {
				failed = true;
				rows.push([`\`${request.name}\``, spec.name, `**FAILED**: ${failure ?? "not run"}`, "—", "—", "—", "—"]);
				continue;
			}
			const isBare = spec.name === "bare";
			const ratios = perRound(s16, bare16, (run, base) => run.rps / base.rps);
			const added50 = perRound(s1, bare1, (run, base) => run.p50 - base.p50);
			const added99 = perRound(s1, bare1, (run, base) => run.p99 - base.p99);
			rows.push([
				`\`${request.name}\``,
				spec.name,
				spread(s16.runs.map((run) => run.rps), 0),
				isBare ? "1.00×" : spread(ratios, 2, "×"),
				`${median(s16.runs.map((run) => run.p50)).toFixed(2)} / ${median(s16.runs.map((run) => run.p99)).toFixed(2)} ms`,
				spread(s16.runs.map((run) => run.cpuUs), 0, " µs"),
				isBare
					? `(bare: ${median(s1.runs.map((run) => run.p50)).toFixed(2)} / ${median(s1.runs.map((run) => run.p99)).toFixed(2)} ms)`
					: `${spread(added50, 2, " ms")} / ${spread(added99, 2, " ms")}`,
			]);
			const ratioGoal = /** @type {Record<string, Record<string, number>>} */ (RATIO_GOALS)[request.name]?.[spec.name];
			if (ratioGoal !== undefined) goals.push(goalRow(`\`${request.name}\`, ${spec.name}: req/s ratio to bare`, ratios, ratioGoal, "×", 2));
			if (spec.mode === "lease") goals.push(goalRow(`\`${request.name}\`, ${spec.name}: p50 added at 1 connection`, added50, LEASE_ADDED_P50_GOAL, " ms", 2, "at-most"));
		}
	}
	const main = table(["Request", "Subject", "req/s at 16 connections, median [min–max]", "ratio to bare, median [min–max]", "p50 / p99 at 16 connections", "workerd CPU per request at 16 connections", "added at 1 connection: p50 / p99, median [min–max]"], rows);
	const goalTable = table(["Goal", "Measured, median [min–max]", "Target", "Met?"], goals);
	const text = `${method(setup)}\n\n${main}\n\n${goalTable}\n`;
	return { text, table: `${main}\n\n${goalTable}`, failed };
}

/**
 * @param {string} label
 * @param {number[]} values
 * @param {number} target
 * @param {string} unit
 * @param {number} digits
 * @param {"at-least" | "at-most"} [sense]
 */
function goalRow(label, values, target, unit, digits, sense = "at-least") {
	if (values.length === 0) return [label, "failed", `${sense === "at-least" ? "≥" : "≤"} ${target}${unit}`, "**no** (the run failed)"];
	const measured = median(values);
	const met = sense === "at-least" ? measured >= target : measured <= target;
	const by = sense === "at-least" ? `${(target - measured).toFixed(digits)}${unit} short; needs ${(target / measured).toFixed(1)}× the throughput` : `${(measured - target).toFixed(digits)}${unit} over`;
	return [label, spread(values, digits, unit), `${sense === "at-least" ? "≥" : "≤"} ${target}${unit}`, met ? "yes" : `**no**: ${by}`];
}

/** @param {{ seconds: number, oneSeconds: number, rounds: number }} setup */
function method({ seconds, oneSeconds, rounds }) {
	return `Method: three subjects, each alone in its own workerd (bare workerd through Miniflare's API, \`cf: false\`, 127.0.0.1), each in front of its own copy of the same origin Worker (\`scripts/bench/messages-origin.js\`: reads the body to its end, answers \`POST /v1/messages\` with a Messages-shaped JSON carrying \`usage\` and \`GET /v1/models\` with a models page, with a Content-Length) over the service binding \`ORIGIN\`: a **bare** pass-through (\`env.ORIGIN.fetch(request)\`), the **guard in exact mode** and the **guard in lease mode** (\`LIMITER_MODE\`; \`src/index.ts\` bundled as for deployment with \`wrangler.toml\`'s bindings, its request log line written to workerd's stdout, limits raised to the token-bucket maximum with no acceleration limit so nothing is refused; without Miniflare's asset router in front of it, as \`npm start\` runs it: runs before 2026-12-03 16:00 had it, about 0.2–0.4 ms of workerd CPU per request that is not the guard's, see "Against the gateway people pick instead: reading the numbers"). Requests: \`POST /v1/messages\` with a ${BODY.length}-byte JSON Messages body (model, max_tokens 1024, system, a five-turn text conversation, metadata) and \`GET /v1/models\`, both with the demo key \`sk-demo-key\` and \`anthropic-version\`. Load: \`autocannon\` in this Node process, keep-alive, no pipelining. After a 1 s warm-up per subject and request, ${rounds} rounds; in each round, for each request, ${seconds} s at 16 connections per subject, then ${oneSeconds} s at 1 connection per subject, the subjects' order rotated every round. Every response is checked (status 200; a \`request-id\` header from the guard); an error, a timeout or any other answer makes the subject's run **failed**, not a number. req/s: responses over the run's wall time; ratio: the guard's req/s over bare's in the same round, median of the rounds; added latency: the guard's p50 (p99) at 1 connection minus bare's in the same round; CPU per request: the subject's workerd process (front Worker, origin and Miniflare's entry Worker together, all on one thread) user + system time over the responses, from /proc. Goals (issue 13) are judged on the medians. The client and the subjects share the machine's cores, so absolute numbers move with the load average; the ratios within a round are the result.`;
}
