#!/usr/bin/env node
// `npm run loadtest [-- --seconds N] [--origin-delay-ms MS]`: drives the local stack (loopback only)
// with four times as many concurrent clients as its in-flight capacity (each obeying retry-after,
// as the SDKs do) against a demo origin that takes tens of milliseconds (so the guard's own cost
// shows in the admitted latency), then fails the origin and brings it back, timing recovery from
// the moment the origin recovered, and reports shedding, latency and recovery. Bounded: at most
// --seconds per loaded phase and a fixed request budget. Rewrites the "## Overload (issue 7)"
// section of BENCHMARKS.md.
import { Agent, request } from "node:http";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { quantile, table, writeSection, yesNo } from "./bench/report.mjs";
import { ROOT } from "./lib/build-worker.mjs";
import { seedKeys, startLocalStack } from "./lib/local-stack.mjs";

process.env.WRANGLER_SEND_METRICS = "false";
const { values } = parseArgs({
	options: { seconds: { type: "string", default: "10" }, "origin-delay-ms": { type: "string", default: "50" }, "no-write": { type: "boolean", default: false } },
});
const SECONDS = Number(values.seconds);
if (!Number.isFinite(SECONDS) || SECONDS < 1 || SECONDS > 120) {
	console.error(`--seconds: expected 1 to 120, got ${JSON.stringify(values.seconds)}`);
	process.exit(2);
}
// Tens of milliseconds: long enough that requests pile up in flight, short enough that the guard's
// own cost (and queueing for the machine's cores) is not lost in the origin's time.
const ORIGIN_DELAY_MS = Number(values["origin-delay-ms"]);
if (!Number.isInteger(ORIGIN_DELAY_MS) || ORIGIN_DELAY_MS < 1 || ORIGIN_DELAY_MS > 10_000) {
	console.error(`--origin-delay-ms: expected a whole number from 1 to 10000, got ${JSON.stringify(values["origin-delay-ms"])}`);
	process.exit(2);
}
const CAPACITY = 100;
const LOAD = CAPACITY * 4;
const BREAKER = { failures: 5, window_seconds: 10, cooldown_seconds: 2, probes: 2 };
/** The origin recovers this long after the breaker was first seen open (about half its cooldown left). */
const RECOVER_AFTER_OPEN_MS = 1000;
const ORGS = 8;
const MAX_REQUESTS = 100_000;

const progress = (text) => process.stderr.write(`loadtest: ${text}\n`);
const agent = new Agent({ keepAlive: true, maxSockets: LOAD + 50 });

/** One GET, timed from send to the last byte. */
function get(base, path, headers) {
	const started = performance.now();
	return new Promise((done) => {
		const req = request(new URL(path, base), { agent, headers }, (res) => {
			res.resume();
			const retry = res.statusCode === 529 || res.statusCode === 429 ? Number(res.headers["retry-after"]) : Number.NaN;
			res.on("end", () => done({ status: res.statusCode ?? 0, ms: performance.now() - started, retryAfter: Number.isFinite(retry) ? retry : undefined }));
			res.on("error", () => done({ status: -1, ms: performance.now() - started }));
		});
		req.on("error", () => done({ status: -1, ms: performance.now() - started }));
		req.end();
	});
}

/**
 * Runs `concurrency` loops of requests until `until()` says stop; returns every result. By default
 * each client arrives at a random moment in the first second and obeys retry-after (plus up to a
 * second of its own); `pollMs` instead makes every client send at once and retry every `pollMs`,
 * whatever retry-after says (a prober: the time it sees is the guard's, not a client's backoff).
 */
async function drive(concurrency, until, next, { pollMs, onResult } = {}) {
	const results = [];
	let sent = 0;
	await Promise.all(
		Array.from({ length: concurrency }, async (_, lane) => {
			// Independent clients: they arrive spread over the first second, not in one instant.
			if (pollMs === undefined) await new Promise((done) => setTimeout(done, Math.random() * 1000));
			let first = true;
			while (!until() && sent < MAX_REQUESTS) {
				sent++;
				const { base, path, headers } = next(lane);
				const sentAt = performance.now();
				const result = { ...(await get(base, path, headers)), sentAt, at: performance.now(), first };
				first = false;
				results.push(result);
				onResult?.(result);
				if (pollMs !== undefined) {
					if (result.status !== 200 && !until()) await new Promise((done) => setTimeout(done, pollMs));
					continue;
				}
				// A shed or refused client waits its retry-after, as the official SDKs do, plus up to a
				// second of its own (independent clients do not retry in lockstep).
				if (result.retryAfter !== undefined && !until()) {
					await new Promise((done) => setTimeout(done, (result.retryAfter + Math.random()) * 1000));
				}
			}
		}),
	);
	return results;
}

const stack = await startLocalStack({
	port: 0,
	persist: false,
	seedDemoKeys: false,
	quiet: true,
	onStdout: () => undefined,
	vars: { OVERLOAD: { max_in_flight: CAPACITY, org_share: 0.5, retry_after_seconds: 1, breaker: BREAKER } },
});
try {
	// Several organisations, so the test measures the guard's capacity, not one organisation's share.
	const loadKeys = Array.from({ length: ORGS }, (_, i) => ({
		key: `sk-guard-LoadTestKey${String(i).padStart(2, "0")}${"0".repeat(26)}`,
		id: `key_load_${i}`,
		org_id: `org_load_${i}`,
		name: `load ${i}`,
		scopes: ["models"],
	}));
	await seedKeys(stack.mf, loadKeys);
	const keys = loadKeys.map(({ key }) => key);
	const base = stack.url;
	const slow = (lane) => ({
		base,
		path: "/v1/models",
		headers: { "x-api-key": keys[lane % ORGS], "anthropic-version": "2023-06-01", "x-demo-fault": "slow", "x-demo-fault-delay-ms": String(ORIGIN_DELAY_MS) },
	});
	const forSeconds = (seconds) => {
		const end = performance.now() + seconds * 1000;
		return () => performance.now() >= end;
	};

	progress("warming up");
	await drive(20, forSeconds(1), slow);
	progress(`unloaded run: 20 in flight for ${SECONDS} s`);
	const unloaded = await drive(20, forSeconds(SECONDS), slow);
	progress(`loaded run: ${LOAD} in flight (4x capacity) for ${SECONDS} s`);
	const loaded = await drive(LOAD, forSeconds(SECONDS), slow);

	// One run of 10 probing clients across the failure and the recovery: the origin fails every
	// request (html-502) until the breaker has been open for RECOVER_AFTER_OPEN_MS, then recovers at
	// one instant (`recoveredAt`); recovery is timed from that instant to the first answer 200.
	progress("origin failure: every request fails (html-502) until the breaker opens, then the origin recovers");
	const failing = (lane) => ({ ...slow(lane), headers: { ...slow(lane).headers, "x-demo-fault": "html-502" } });
	const healthy = (lane) => ({ ...slow(lane), headers: { ...slow(lane).headers, "x-demo-fault-delay-ms": "0" } });
	const failureStarted = performance.now();
	let openedAt = Number.NaN;
	let recoveredAt = Number.NaN;
	let firstOkAt = Number.NaN;
	const transition = await drive(
		10,
		() => !Number.isNaN(firstOkAt) || performance.now() - failureStarted > 60_000,
		(lane) => {
			if (Number.isNaN(recoveredAt) && performance.now() - openedAt >= RECOVER_AFTER_OPEN_MS) recoveredAt = performance.now();
			return Number.isNaN(recoveredAt) ? failing(lane) : healthy(lane);
		},
		{
			pollMs: 50,
			onResult: (result) => {
				if (result.status === 529 && Number.isNaN(openedAt)) openedAt = result.at;
				if (result.status === 200 && result.sentAt >= recoveredAt && Number.isNaN(firstOkAt)) firstOkAt = result.at;
			},
		},
	);
	const failed = transition.filter((r) => !(r.sentAt >= recoveredAt));
	const flowing = Number.isNaN(firstOkAt) ? Number.NaN : firstOkAt - recoveredAt;

	const admitted = loaded.filter((r) => r.status === 200);
	const shed = loaded.filter((r) => r.status === 529);
	const orgRefused = loaded.filter((r) => r.status === 429);
	const guardFailures = loaded.filter((r) => r.status !== 200 && r.status !== 529 && r.status !== 429);
	const unloadedOk = unloaded.filter((r) => r.status === 200);
	const p = (rows, q) => quantile(rows.map((r) => r.ms), q);
	const shedP99 = p(shed, 0.99);
	// A client's first request also opens its TCP connection; the rest reuse it (keep-alive).
	const warmShed = shed.filter((r) => !r.first);
	const ratioP99 = p(admitted, 0.99) / p(unloadedOk, 0.99);
	const breakerOpened = failed.some((r) => r.status === 529);
	const rows = [
		["requests in the loaded run", loaded.length, "", ""],
		["share shed (529)", `${((shed.length / loaded.length) * 100).toFixed(1)}%`, "", ""],
		["refused by organisation share (429)", orgRefused.length, "", ""],
		["shed answer latency p50 / p99", `${p(shed, 0.5).toFixed(2)} / ${shedP99.toFixed(2)} ms`, "p99 < 5 ms", yesNo(shedP99 < 5)],
		[
			"the same, on kept-alive connections only",
			`${p(warmShed, 0.5).toFixed(2)} / ${p(warmShed, 0.99).toFixed(2)} ms`,
			"p99 < 5 ms",
			yesNo(p(warmShed, 0.99) < 5),
		],
		["admitted latency p50 / p99, loaded", `${p(admitted, 0.5).toFixed(1)} / ${p(admitted, 0.99).toFixed(1)} ms`, "", ""],
		["admitted latency p50 / p99, unloaded", `${p(unloadedOk, 0.5).toFixed(1)} / ${p(unloadedOk, 0.99).toFixed(1)} ms`, "", ""],
		["admitted p99, loaded / unloaded", `${ratioP99.toFixed(2)}x`, "within 2x", yesNo(ratioP99 <= 2)],
		["admitted requests failed by the guard", guardFailures.length, "0", yesNo(guardFailures.length === 0)],
		["breaker opened during the origin failure", breakerOpened ? "yes" : "no", "yes", yesNo(breakerOpened)],
		[
			`origin's recovery (${RECOVER_AFTER_OPEN_MS / 1000} s after the breaker opened) to the first answer 200`,
			Number.isNaN(flowing) ? (Number.isNaN(recoveredAt) ? "the breaker never opened" : "never (60 s)") : `${(flowing / 1000).toFixed(2)} s`,
			`at most the cooldown (${BREAKER.cooldown_seconds} s) + 0.5 s`,
			yesNo(!Number.isNaN(flowing) && flowing <= BREAKER.cooldown_seconds * 1000 + 500),
		],
	];
	const report = table(["measure", "value", "goal", "met"], rows);
	console.log(report);
	if (guardFailures.length > 0) {
		const statuses = [...new Set(guardFailures.map((r) => r.status))].join(", ");
		console.log(`\nstatuses of the requests the guard failed: ${statuses}`);
	}
	if (!values["no-write"]) {
		const setup =
			`_Written by \`npm run loadtest\` on ${new Date().toISOString()}, ${process.platform} ${process.arch}, Node ${process.version}. ` +
			`Local stack (Miniflare), in-flight bound ${CAPACITY}, ${ORGS} organisations; GET /v1/models with the demo origin's \`slow\` fault ` +
			`(${ORIGIN_DELAY_MS} ms); unloaded: 20 in flight for ${SECONDS} s; loaded: ${LOAD} in flight for ${SECONDS} s; then \`html-502\` ` +
			`until the breaker (${BREAKER.failures} failures in ${BREAKER.window_seconds} s, cooldown ${BREAKER.cooldown_seconds} s, ` +
			`${BREAKER.probes} probes) opens; the origin recovers ${RECOVER_AFTER_OPEN_MS / 1000} s after the breaker was first seen open, and 10 probing clients ` +
			`(every 50 ms, not obeying retry-after, so the time is the guard's, not a client's backoff) time the first answer 200 from that instant. ` +
			`Client and server share the machine's cores._`;
		const reading =
			"Reading the numbers: a shed request is decided before any I/O (no key lookup, no body byte, no usage-object call), " +
			"so its time at the client is loopback HTTP plus queueing for the machine's cores, which the load generator (hundreds of " +
			"sockets in one Node process) and workerd share. With an origin of tens of milliseconds, the admitted latency under load " +
			"includes the guard's own work per request and the queue for the cores; the ratio shows how much of it the overload bound " +
			"keeps away from admitted requests. Recovery takes at most the cooldown the breaker had left when the origin came back " +
			`(about ${(BREAKER.cooldown_seconds * 1000 - RECOVER_AFTER_OPEN_MS) / 1000} s here, more if a failed probe had just re-opened it), then the probes pass and it closes.`;
		writeSection(resolve(ROOT, "BENCHMARKS.md"), "## Overload (issue 7)", `${setup}\n\n${report}\n\n${reading}`, "# Benchmarks\n");
		progress("wrote BENCHMARKS.md");
	}
} finally {
	agent.destroy();
	await stack.dispose();
}
