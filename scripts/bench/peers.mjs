// Against the gateway people pick instead (issue 22): a bare Worker, the guard in lease and in exact
// mode, and Portkey's open-source gateway (Node), each in front of ONE origin reached by URL, under
// the small bench's two everyday requests. Throughput as a ratio to bare, the front's own CPU per
// request from /proc over fixed-count runs at 16 connections, and the p50 each front adds at one
// connection, over interleaved rounds.
import { loadavg } from "node:os";
import { PORTKEY_PATCH, PORTKEY_VERSION, preparePortkey, startPortkey } from "./peers-portkey.mjs";
import { median, table } from "./report.mjs";
import { interleavedRounds, perRound, spread } from "./rounds.mjs";
import { SMALL_REQUESTS } from "./small.mjs";
import { buildWorker } from "../lib/build-worker.mjs";
import { prepareSmall, startSmallOrigin, startSmallSubject } from "./small-stack.mjs";

export const PEERS_SECTION = "## Against the gateway people pick instead (issue 22)";

/** Responses per fixed-count run at 16 connections (the CPU per request is read over it). */
const COUNT = 3000;

/** The answers' shapes: the origin's message (with its usage) and its models page, passed on whole. */
const CHECKS = {
	"POST /v1/messages": (/** @type {string} */ body) => body.startsWith("{") && body.includes('"type":"message"') && body.includes('"usage":{"input_tokens":') && body.endsWith("}"),
	"GET /v1/models": (/** @type {string} */ body) => body.startsWith('{"data":[') && body.includes('"id":"claude-haiku-4-5-20251001"') && body.endsWith('"last_id":"claude-haiku-4-5-20251001"}'),
};
/**
 * The small bench's requests, asking for the answer uncompressed: workerd re-encodes a passed-on
 * answer when the client names no coding (a bare pass-through answers `br` to a client that never
 * asked), and no front should spend CPU compressing toward the load generator.
 */
export const PEERS_REQUESTS = SMALL_REQUESTS.map((request) => ({
	...request,
	headers: { ...request.headers, "accept-encoding": "identity" },
	check: CHECKS[/** @type {keyof typeof CHECKS} */ (request.name)],
}));

const DIRECT = "origin, direct (no front)";
const BARE = "bare Worker";
const LEASE = "edge-guard, lease";
const EXACT = "edge-guard, exact";
/** The guard as `wrangler dev` runs it: Miniflare's asset router Worker in front of it on every request. */
const LEASE_ASSETS = "edge-guard, lease, behind Miniflare's asset router (as `wrangler dev` runs it)";
/** The guard with `console.log` made a no-op: what workerd's local formatting of the log line costs. */
const LEASE_QUIET = "edge-guard, lease, log line not printed";

const PORTKEY = `Portkey gateway ${PORTKEY_VERSION} (Node)`;
/** The small bench's subjects: the origin's copy in the front's own workerd, over a service binding. */
const BARE_BOUND = "bare Worker, origin over a service binding";
const LEASE_BOUND = "edge-guard, lease, origin over a service binding";

/**
 * A fixed-count run at 16 connections (CPU per request is read over it), then a timed run at one
 * connection (the added p50).
 * @param {number} count
 * @param {number} oneSeconds
 * @returns {import("./rounds.mjs").Phase[]}
 */
export function peersPhases(count, oneSeconds) {
	return [
		{ name: "16", connections: 16, seconds: 0, amount: count },
		{ name: "1", connections: 1, seconds: oneSeconds },
	];
}

/** Lease mode's goals (issue 22), judged on the medians of one run's rounds. */
const GOALS = {
	cpuVsPortkey: 0.5,
	ratio: { "POST /v1/messages": 0.6, "GET /v1/models": 0.75 },
	addedP50Ms: 0.5,
};

/**
 * @typedef {object} PeersOptions
 * @property {number} rounds
 * @property {number} oneSeconds each run at 1 connection
 * @property {(message: string) => void} progress
 * @property {Set<{ dispose: () => Promise<void> }>} [live] where running subjects are kept while they run (stopped on a signal)
 */

/**
 * Runs the benchmark; returns its section's markdown and whether any run failed.
 * @param {PeersOptions} options
 */
export async function peersBench({ rounds, oneSeconds, progress, live }) {
	const loadAtStart = loadavg();
	const [prepared, portkey] = await Promise.all([prepareSmall(), preparePortkey(progress)]);
	if ("unavailable" in portkey) progress(`Portkey's gateway will not be run: ${portkey.unavailable}`);
	/** @type {Array<{ dispose: () => Promise<void> }>} */
	const started = [];
	/**
	 * @template {{ dispose: () => Promise<void> }} T
	 * @param {T} subject
	 * @returns {T}
	 */
	const keep = (subject) => {
		started.push(subject);
		live?.add(subject);
		return subject;
	};
	try {
		const origin = keep(await startSmallOrigin(prepared));
		const originUrl = origin.url.href;
		/** @type {import("./rounds.mjs").Subject[]} */
		const subjects = [{ name: DIRECT, url: origin.url, pid: origin.pid, requireRequestId: false }];
		const quiet = { ...prepared, guard: await buildWorker("scripts/bench/quiet-guard.ts", "bench-quiet-guard") };
		for (const [name, spec, bundles] of /** @type {Array<[string, import("./small-stack.mjs").SmallSubjectSpec, import("./small-stack.mjs").SmallPrepared]>} */ ([
			[BARE, { name: BARE, front: "bare" }, prepared],
			[LEASE, { name: LEASE, front: "guard", mode: "lease" }, prepared],
			[EXACT, { name: EXACT, front: "guard", mode: "exact" }, prepared],
			[LEASE_ASSETS, { name: LEASE_ASSETS, front: "guard", mode: "lease", workerOptions: { assets: prepared.guardOptions.assets } }, prepared],
			[LEASE_QUIET, { name: LEASE_QUIET, front: "guard", mode: "lease" }, quiet],
		])) {
			const subject = keep(await startSmallSubject({ ...spec, originUrl }, bundles));
			subjects.push({ name, url: subject.url, pid: subject.pid, requireRequestId: spec.front === "guard" });
		}
		if (!("unavailable" in portkey)) {
			const gateway = keep(await startPortkey(origin.url));
			subjects.push({ name: PORTKEY, url: gateway.url, pid: gateway.pid, requireRequestId: false, headers: gateway.headers });
		}
		const results = await interleavedRounds({
			subjects,
			requests: PEERS_REQUESTS,
			phases: peersPhases(COUNT, oneSeconds),
			rounds,
			warmupSeconds: 1,
			progress,
		});
		// Where the added p50 comes from: the same 1-connection runs beside the small bench's subjects
		// (origin over a service binding, issue 13's 0.45 ms), interleaved the same way.
		progress("the added p50's parts: the small bench's subjects (origin over a service binding) beside the URL ones, 1 connection");
		/** @type {import("./rounds.mjs").Subject[]} */
		const bound = [];
		for (const [name, spec] of /** @type {const} */ ([
			[BARE_BOUND, { front: "bare" }],
			[LEASE_BOUND, { front: "guard", mode: "lease" }],
		])) {
			const subject = keep(await startSmallSubject({ name, ...spec }, prepared));
			bound.push({ name, url: subject.url, pid: subject.pid, requireRequestId: spec.front === "guard" });
		}
		const parts = await interleavedRounds({
			subjects: [...subjects.filter((subject) => subject.name === DIRECT || subject.name === BARE || subject.name === LEASE), ...bound],
			requests: PEERS_REQUESTS,
			phases: [{ name: "1", connections: 1, seconds: oneSeconds }],
			rounds,
			warmupSeconds: 1,
			progress,
		});
		return report(results, parts, { rounds, oneSeconds, portkey, loadAtStart });
	} finally {
		await Promise.all(
			started.map((subject) => {
				live?.delete(subject);
				return subject.dispose().catch((error) => progress(`could not stop a subject: ${error}`));
			}),
		);
	}
}

/**
 * @param {Awaited<ReturnType<typeof interleavedRounds>>} results
 * @param {Awaited<ReturnType<typeof interleavedRounds>>} parts the 1-connection runs beside the small bench's subjects
 * @param {{ rounds: number, oneSeconds: number, portkey: Awaited<ReturnType<typeof preparePortkey>>, loadAtStart: number[] }} setup
 */
function report(results, parts, setup) {
	let failed = false;
	const names = [DIRECT, BARE, LEASE, EXACT, LEASE_ASSETS, LEASE_QUIET, PORTKEY];
	const rows = [];
	/** @type {Array<Array<string>>} */
	const goals = [];
	for (const request of PEERS_REQUESTS) {
		const by = results[request.name] ?? {};
		const at = (/** @type {string} */ name, /** @type {string} */ phase) => by[name]?.[phase];
		for (const name of names) {
			const s16 = at(name, "16");
			const s1 = at(name, "1");
			if (name === PORTKEY && s16 === undefined) {
				rows.push([`\`${request.name}\``, name, `not run: ${"unavailable" in setup.portkey ? setup.portkey.unavailable : "?"}`, "—", "—", "—", "—", "—"]);
				continue;
			}
			const failure = s16?.failure ?? s1?.failure;
			if (failure !== undefined || !s16 || !s1) {
				failed = true;
				rows.push([`\`${request.name}\``, name, `**FAILED**: ${failure ?? "not run"}`, "—", "—", "—", "—", "—"]);
				continue;
			}
			const ratios = perRound(s16, at(BARE, "16"), (run, base) => run.rps / base.rps);
			const vsDirect = perRound(s1, at(DIRECT, "1"), (run, base) => run.p50 - base.p50);
			const vsBare = perRound(s1, at(BARE, "1"), (run, base) => run.p50 - base.p50);
			rows.push([
				`\`${request.name}\``,
				name === DIRECT ? `${name} (the origin's own cost)` : name,
				name === BARE ? "1.00" : spread(ratios, 2),
				spread(s16.runs.map((run) => run.rps), 0),
				spread(s16.runs.map((run) => run.cpuUs / 1000), 2, " ms"),
				spread(s1.runs.map((run) => run.p50), 2, " ms"),
				name === DIRECT ? "(baseline)" : spread(vsDirect, 2, " ms"),
				name === DIRECT || name === BARE ? "(baseline)" : spread(vsBare, 2, " ms"),
			]);
			if (name !== LEASE) continue;
			const portkeyCpu = perRound(s16, at(PORTKEY, "16"), (run, base) => run.cpuUs / base.cpuUs);
			goals.push(goalRow(`\`${request.name}\`: front CPU per request, lease ÷ Portkey`, portkeyCpu, GOALS.cpuVsPortkey, "×", "at-most"));
			goals.push(goalRow(`\`${request.name}\`: req/s, lease ÷ bare`, ratios, GOALS.ratio[/** @type {keyof typeof GOALS.ratio} */ (request.name)], "×", "at-least"));
			goals.push(goalRow(`\`${request.name}\`: p50 added at 1 connection, vs bare (the guard's own addition)`, vsBare, GOALS.addedP50Ms, " ms", "at-most"));
			goals.push(goalRow(`\`${request.name}\`: p50 added at 1 connection, vs the origin direct (issue 22's column)`, vsDirect, GOALS.addedP50Ms, " ms", "at-most"));
		}
	}
	const header = [
		"Request",
		"Subject",
		"req/s × bare at 16 connections",
		"req/s at 16 connections",
		"front CPU per request at 16 connections",
		"p50 at 1 connection",
		"added p50 at 1 connection vs the origin direct",
		"added p50 at 1 connection vs bare",
	];
	/** @type {Array<Array<string>>} */
	const partRows = [];
	for (const request of PEERS_REQUESTS) {
		const one = (/** @type {string} */ name) => parts[request.name]?.[name]?.["1"];
		const p50s = (/** @type {string} */ name) => spread(one(name)?.failure === undefined ? (one(name)?.runs.map((run) => run.p50) ?? []) : [], 2, " ms");
		const minus = (/** @type {string} */ a, /** @type {string} */ b) => {
			const failure = one(a)?.failure ?? one(b)?.failure;
			if (failure !== undefined) failed = true;
			return failure === undefined ? spread(perRound(one(a), one(b), (run, base) => run.p50 - base.p50), 2, " ms") : `**FAILED**: ${failure}`;
		};
		partRows.push([
			`\`${request.name}\``,
			`${p50s(DIRECT)} / ${p50s(BARE)} / ${p50s(LEASE)} / ${p50s(BARE_BOUND)} / ${p50s(LEASE_BOUND)}`,
			minus(LEASE, DIRECT),
			minus(BARE, DIRECT),
			minus(LEASE, BARE),
			minus(LEASE_BOUND, BARE_BOUND),
			minus(BARE, BARE_BOUND),
		]);
	}
	const partsTable = table(
		[
			"Request",
			"p50 at 1 connection: origin direct / bare by URL / lease by URL / bare over a binding / lease over a binding",
			"lease by URL − origin direct (issue 22's column)",
			"bare by URL − origin direct (a front's hop)",
			"lease by URL − bare by URL (the guard's own, by URL)",
			"lease − bare, both over a binding (issue 13's small bench)",
			"bare by URL − bare over a binding (reaching the origin over HTTP)",
		],
		partRows,
	);
	const loadAtEnd = loadavg();
	const text = [
		method(setup),
		`Load average (1, 5, 15 min) at the start ${setup.loadAtStart.map((value) => value.toFixed(2)).join(", ")}; at the end ${loadAtEnd.map((value) => value.toFixed(2)).join(", ")} (the machine is shared: absolute numbers move with it, the ratios within a round much less).`,
		table(header, rows),
		table(["Goal (lease mode, issue 22)", "Measured, median [min–max] of the rounds", "Target", "Met?"], goals),
		`Where the added p50 comes from: after the rounds above, ${setup.rounds} more rounds at 1 connection only (${setup.oneSeconds} s per subject, order rotated) of the origin direct, bare and lease by URL, and the small bench's own subjects (\`npm run bench -- small\`: bare and lease, each with its own copy of the origin in its workerd over the service binding \`ORIGIN\`). Differences per round, median [min–max].`,
		partsTable,
	].join("\n\n");
	return { text: `${text}\n`, failed };
}

/**
 * @param {string} label
 * @param {number[]} values
 * @param {number} target
 * @param {string} unit
 * @param {"at-least" | "at-most"} sense
 */
function goalRow(label, values, target, unit, sense) {
	const bound = `${sense === "at-least" ? "≥" : "≤"} ${target}${unit}`;
	if (values.length === 0) return [label, "not measured (a run failed or was not run)", bound, "**unknown**"];
	const measured = median(values);
	const met = sense === "at-least" ? measured >= target : measured <= target;
	return [label, spread(values, 2, unit), bound, met ? "yes" : `**no** (${(sense === "at-least" ? target / measured : measured / target).toFixed(1)}× off)`];
}

/** @param {{ rounds: number, oneSeconds: number, portkey: Awaited<ReturnType<typeof preparePortkey>> }} setup */
function method({ rounds, oneSeconds, portkey }) {
	const gateway =
		"unavailable" in portkey
			? `**Portkey's gateway was not run**: ${portkey.unavailable}.`
			: `**Portkey's gateway ${portkey.version}**: the \`@portkey-ai/gateway\` npm package's Node build, installed by the bench into \`.bench-peers/portkey\` (ignored by git; \`npm install --ignore-scripts\`; it resolved hono ${portkey.runtime.hono} and @hono/node-server ${portkey.runtime["@hono/node-server"]}), started as \`node build/start-server.js --port=N --headless\`, each request carrying \`x-portkey-provider: anthropic\` and \`x-portkey-custom-host: <origin>/v1\`. \`POST /v1/messages\` runs its \`/v1/messages\` handler as published; \`GET /v1/models\` runs its generic pass-through with a one-line local patch (\`scripts/bench/peers-portkey.mjs\`, applied idempotently by the bench): as published it answers that request \`500 TypeError: immutable\` (upstream #1389/#1550), so \`${PORTKEY_PATCH.original}\` becomes \`${PORTKEY_PATCH.patched}\` (the pass-through's fetch response is copied into a new \`Response\` before Portkey adds its headers). Its output is read and dropped, as workerd's is; as published it writes a stack trace (\`Error processing log: TypeError: Cannot read properties of undefined (reading 'stream')\`) for every \`GET\` pass-through, which is part of its measured cost.`;
	return `Method: **one origin**, reached by URL by every front: \`scripts/bench/messages-origin.js\` alone in its own workerd (bare workerd through Miniflare, \`cf: false\`, 127.0.0.1), the small bench's origin (reads the body to its end, answers \`POST /v1/messages\` with a message carrying \`usage\`, \`GET /v1/models\` with a models page, with a Content-Length). Fronts, each alone in its own process on 127.0.0.1: a **bare Worker** (\`scripts/bench/bare-url-worker.js\`: \`fetch(origin + path, request)\`, no checks) and **the guard in lease and in exact mode** (\`src/index.ts\` bundled as for deployment with \`wrangler.toml\`'s bindings, \`ORIGIN_URL\` set to the origin and no \`ORIGIN\` service binding, its log line written to workerd's stdout and drained, limits raised so nothing is refused), each in its own workerd through Miniflare (so each also runs Miniflare's entry Worker). The guard's rows run it as \`npm start\` does, **without Miniflare's asset router** (\`scripts/bench/small-stack.mjs\`, as \`scripts/lib/local-stack.mjs\`): for the console's files (\`[assets]\`, \`run_worker_first\`) Miniflare puts a router Worker of its own in the guard's workerd in front of the guard on every request; deployed, that routing is Cloudflare's, and a Worker is billed for its own invocation only. Two more guard rows show what a local stack can add: **behind Miniflare's asset router** (the guard as \`wrangler dev\` runs it), and **log line not printed** (\`scripts/bench/quiet-guard.ts\`: the same guard with \`console.log\` a no-op, so the difference is workerd's local formatting of the log line with node's \`inspect\` and its write to stdout; deployed, Workers Logs takes the object from the runtime, and what that costs is not measured here). ${gateway} The origin alone (**origin, direct**) is a subject too: the baseline of the added latency. Requests: the small bench's \`POST /v1/messages\` (3072-byte Messages body) and \`GET /v1/models\`, with \`x-api-key: sk-demo-key\` and \`anthropic-version\`. Load: \`autocannon\` in the bench's Node process, keep-alive, no pipelining. After a 1 s warm-up per subject and request at 16 connections, ${rounds} rounds; in each, for each request, a fixed-count run of ${COUNT} responses at 16 connections per subject, then ${oneSeconds} s at 1 connection per subject, the subjects' order rotated every round. Every response is checked: status 200 (any other status, error or timeout is counted and fails the subject's run, shown **FAILED** with the counts), a \`request-id\` from the guard, and the body's shape (the origin's message with its \`usage\`, or its whole models page). req/s × bare: the subject's req/s over bare's in the same round. Front CPU per request: the front's own process, user + system time from \`/proc/<pid>/stat\` over the fixed-count run, divided by its responses (the workerd process for the Workers, the node process for Portkey; the origin's CPU is not in it: the origin row is the origin's own). Added p50: the subject's p50 at 1 connection minus the origin's (direct) in the same round, and minus bare's in the same round. Cells: median of the rounds [min–max]; goals are judged on the medians.`;
}
