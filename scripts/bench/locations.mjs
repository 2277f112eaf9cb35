// Accounting across isolates and locations (issue 19, point 6), black box: K guard isolates in one
// Miniflare share one organisation's usage object, which is 0, 30 or 80 ms away; organisations on
// tiers with one small limit each (requests, input tokens, output tokens, money) fire bursts of
// concurrent messages (JSON with a length, chunked uploads, streams) through the K isolates in
// turn, in exact and in lease mode. What was admitted is measured at the origin, which records
// what it received and reports known usage; after each burst the admin API is asked how many
// claims are still outstanding. (distance × mode) runs are interleaved in rounds, the order rotated
// every round, with fresh organisations every time.
import { request } from "node:http";
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { median, table } from "./report.mjs";
import { processCpuMs, spread } from "./rounds.mjs";
import { startLocationsOrigin, TAG_HEADER } from "./locations-origin.mjs";
import { startLocationsStack } from "./locations-stack.mjs";
import { UNLIMITED_TIERS } from "./stack.mjs";

export const LOCATIONS_SECTION = "## Accounting across isolates (issue 19)";

const MODES = /** @type {const} */ (["exact", "lease"]);
/** The usage-object RPC methods the design names (docs/accounting-design.md); the wrapper must delay each. */
const NAMED_METHODS = ["admit", "grow", "settle", "lease", "consoleReport", "report", "revokeKey", "restoreKey"];
/** Lease mode's defaults (README "Usage limits", src/limits/client/lease-client.ts): a slice is spent within 5 s and is at most 5% of a limit. */
const LEASE_TTL_MS = 5000;
const LEASE_MAX_FRACTION = 0.05;
const MODEL = "claude-sonnet-4-6";
/** USD per million tokens (the price of the money tier, for every model). */
const PRICE = { input: 3, output: 15, cache_write: 3.75, cache_read: 0.3 };
const NANOS_PER_USD = 1e9;
const GENEROUS = 10_000_000;
/** The origin's answers take this long (a stream spreads it over its events). */
const ORIGIN_DELAY_MS = 60;
/** A chunked upload is written in this many pieces, this far apart. */
const CHUNK_PIECES = 8;
const CHUNK_GAP_MS = 5;
const REQUEST_TIMEOUT_MS = 30_000;
/** After a burst, claims still outstanding are asked again until 0 or this long. */
const CLAIMS_WAIT_MS = 6000;
const KINDS = /** @type {const} */ (["json", "chunked", "stream"]);

/**
 * One limit under test: a tier where it is small and every other limit generous, and the requests
 * its organisations send (body size, max_tokens); `fits` is how many such requests the limit holds.
 * @typedef {object} Target
 * @property {"requests" | "input_tokens" | "output_tokens" | "money"} limit
 * @property {string} short used in organisation ids
 * @property {string} tier
 * @property {Record<string, unknown>} config the tier
 * @property {number} value the limit (per minute; money: USD per day)
 * @property {number} perMinute refill per minute (0: none)
 * @property {boolean} leased whether lease mode leases it (requests, input and output tokens)
 * @property {number} bodyBytes
 * @property {number} maxTokens
 */

/**
 * Small on purpose: a whole run's bursts (about 80 requests at `--burst 3`) go through one workerd
 * process on a shared 2-core machine, and a usage-object call slower than the limiter's 500 ms bound
 * is decided without the object (see `--limiter-failure`); bigger bursts measure the machine.
 * @type {Target[]}
 */
const TARGETS = [
	{ limit: "requests", short: "req", tier: "bench_requests", value: 12, perMinute: 12, leased: true, bodyBytes: 512, maxTokens: 16, config: {} },
	{ limit: "input_tokens", short: "in", tier: "bench_input", value: 24_000, perMinute: 24_000, leased: true, bodyBytes: 16 * 1024, maxTokens: 16, config: {} },
	{ limit: "output_tokens", short: "out", tier: "bench_output", value: 2000, perMinute: 2000, leased: true, bodyBytes: 512, maxTokens: 400, config: {} },
	{ limit: "money", short: "usd", tier: "bench_money", value: 0.01, perMinute: 0, leased: false, bodyBytes: 2048, maxTokens: 100, config: {} },
];
for (const target of TARGETS) {
	target.config = {
		requests_per_minute: target.limit === "requests" ? target.value : GENEROUS,
		input_tokens_per_minute: target.limit === "input_tokens" ? target.value : GENEROUS,
		output_tokens_per_minute: target.limit === "output_tokens" ? target.value : GENEROUS,
		...(target.limit === "money" ? { price: PRICE, budgets: { organization: { day: target.value } } } : {}),
	};
}

/** What one request of `target` costs in nano-dollars at the money tier's price, as the origin reports its usage. */
function nanosOf(/** @type {number} */ inputTokens, /** @type {number} */ outputTokens) {
	return inputTokens * PRICE.input * 1000 + outputTokens * PRICE.output * 1000;
}

/** How many requests of `target` its limit holds. */
function fits(/** @type {Target} */ target) {
	const input = Math.ceil(target.bodyBytes / 4);
	if (target.limit === "requests") return target.value;
	if (target.limit === "input_tokens") return target.value / input;
	if (target.limit === "output_tokens") return target.value / target.maxTokens;
	return (target.value * NANOS_PER_USD) / nanosOf(input, target.maxTokens);
}

/**
 * A Messages request of exactly `bytes` bytes: model and max_tokens first, the bulk one user text.
 * @param {Target} target @param {boolean} stream @param {string} tag
 */
function messageBody(target, stream, tag) {
	const head = `{"model":"${MODEL}","max_tokens":${target.maxTokens},"stream":${stream},"metadata":{"user_id":"${tag.replaceAll("/", "_")}"},"messages":[{"role":"user","content":"`;
	const tail = '"}]}';
	const filler = Math.max(1, target.bodyBytes - head.length - tail.length);
	return Buffer.from(`${head}${"a".repeat(filler)}${tail}`);
}

/**
 * @typedef {object} Answer
 * @property {number} status 0 when none came
 * @property {Record<string, string | string[] | undefined>} headers
 * @property {string} text
 * @property {string | undefined} error
 * @property {number} endedAt performance.now() when it ended
 */

/**
 * POSTs one message to a guard (by host) on a connection of its own; a chunked body is written in
 * pieces, and writing stops once an error status has arrived. Never rejects.
 * @param {{ url: URL, host: string, key: string, tag: string, body: Buffer, chunked: boolean }} options
 * @returns {Promise<Answer>}
 */
function send({ url, host, key, tag, body, chunked }) {
	return new Promise((resolve) => {
		/** @type {Record<string, string>} */
		const headers = { host, "x-api-key": key, "anthropic-version": "2023-06-01", "content-type": "application/json", [TAG_HEADER]: tag };
		if (!chunked) headers["content-length"] = String(body.length);
		const req = request({ hostname: url.hostname, port: Number(url.port), path: "/v1/messages", method: "POST", headers, agent: false });
		let text = "";
		let done = false;
		let stopped = false;
		/** @type {Answer["headers"]} */
		let answerHeaders = {};
		let status = 0;
		const finish = (/** @type {string | undefined} */ error) => {
			if (done) return;
			done = true;
			clearTimeout(timer);
			resolve({ status, headers: answerHeaders, text, error, endedAt: performance.now() });
			req.destroy();
		};
		const timer = setTimeout(() => finish(`no complete answer within ${REQUEST_TIMEOUT_MS} ms`), REQUEST_TIMEOUT_MS);
		req.on("response", (res) => {
			status = res.statusCode ?? 0;
			answerHeaders = res.headers;
			if (status >= 400) stopped = true;
			res.setEncoding("utf8");
			res.on("data", (part) => {
				if (text.length < 256 * 1024) text += part;
			});
			res.on("end", () => finish(undefined));
			res.on("error", (error) => finish(String(error)));
		});
		// A write error after an early answer (the guard refused mid-upload) is not the answer's failure.
		req.on("error", (error) => {
			if (status === 0) finish(String(error));
		});
		if (!chunked) {
			req.end(body);
			return;
		}
		const piece = Math.ceil(body.length / CHUNK_PIECES);
		let at = 0;
		const next = () => {
			if (done) return;
			if (stopped || at >= body.length) return void req.end();
			req.write(body.subarray(at, at + piece));
			at += piece;
			setTimeout(next, CHUNK_GAP_MS);
		};
		next();
	});
}

/**
 * Checks one answer: `200` with a whole message (JSON) or event stream ending in `message_stop`,
 * carrying the origin's output; or a refusal (`429 rate_limit_error`, `529 overloaded_error`) in
 * the error envelope. Every answer needs a `request-id`. Returns the outcome or what is wrong.
 * @param {Answer} answer @param {"json" | "chunked" | "stream"} kind @param {number} maxTokens
 * @returns {{ outcome: "200" | "429" | "529" } | { failure: string }}
 */
function check(answer, kind, maxTokens) {
	const shown = () => JSON.stringify(answer.text.slice(0, 200));
	if (answer.error !== undefined) return { failure: `${kind}: ${answer.error} (status ${answer.status})` };
	if (typeof answer.headers["request-id"] !== "string") return { failure: `${kind}: ${answer.status} without a request-id` };
	if (answer.status === 200) {
		if (kind === "stream") {
			const type = String(answer.headers["content-type"] ?? "");
			if (!type.startsWith("text/event-stream")) return { failure: `stream: 200 with content-type ${type}` };
			if (!answer.text.includes("event: message_stop")) return { failure: `stream: 200 without message_stop: ${shown()}` };
			if (!answer.text.includes(`"usage":{"output_tokens":${maxTokens}}`)) return { failure: `stream: 200 without the origin's usage: ${shown()}` };
			return { outcome: "200" };
		}
		try {
			const message = JSON.parse(answer.text);
			if (message?.type !== "message" || message?.usage?.output_tokens !== maxTokens) return { failure: `${kind}: 200 that is not the origin's message: ${shown()}` };
		} catch {
			return { failure: `${kind}: 200 whose body is not JSON: ${shown()}` };
		}
		return { outcome: "200" };
	}
	if (answer.status === 429 || answer.status === 529) {
		const expected = answer.status === 429 ? "rate_limit_error" : "overloaded_error";
		try {
			const envelope = JSON.parse(answer.text);
			if (envelope?.type !== "error" || envelope?.error?.type !== expected || typeof envelope?.error?.message !== "string") {
				return { failure: `${kind}: ${answer.status} not in the error envelope (${expected}): ${shown()}` };
			}
		} catch {
			return { failure: `${kind}: ${answer.status} whose body is not JSON: ${shown()}` };
		}
		return { outcome: answer.status === 429 ? "429" : "529" };
	}
	return { failure: `${kind}: unexpected status ${answer.status}: ${shown()}` };
}

/**
 * One organisation's share of a run.
 * @typedef {object} OrgRun
 * @property {string} id
 * @property {Target} target
 * @property {string} key
 */

/**
 * What one organisation's burst got.
 * @typedef {object} Sample
 * @property {number} admitted in the limit's unit (money: USD)
 * @property {number} bound what the goal allows in this burst
 * @property {number} refill what the limit refilled during the burst
 * @property {number | undefined} outstanding claims outstanding at the end (undefined: the admin API does not say)
 * @property {Record<string, number>} outcomes answers by status ("failed": did not pass the checks)
 * @property {Record<string, number>} unavailable of those, answers with `x-guard-ratelimit: unavailable`, by status
 * @property {number} sent
 * @property {number} ms the burst, first request sent to last answer
 */

/**
 * @param {{
 *   rounds: number,
 *   isolates: number,
 *   orgs: number,
 *   burst: number,
 *   distances: number[],
 *   limiterFailure: "closed" | "open" | "local",
 *   progress: (message: string) => void,
 *   live?: Set<{ dispose: () => Promise<void> }>,
 *   signal?: AbortSignal,
 * }} options `limiterFailure`: the metered route's policy when a usage-object call fails or times out
 */
export async function locationsBench({ rounds, isolates, orgs, burst, distances, limiterFailure, progress, live, signal }) {
	const started = performance.now();
	const runId = randomBytes(4).toString("hex");
	const adminToken = `bench-admin-${randomBytes(16).toString("hex")}`;
	/** @type {Array<{ distance: number, mode: string }>} */
	const configs = distances.flatMap((distance) => MODES.map((mode) => ({ distance, mode })));
	// Fresh organisations for every run of every configuration, named in ORG_TIERS up front.
	/** @type {Map<string, OrgRun[]>} "round/mode/distance" → its organisations */
	const plan = new Map();
	/** @type {Record<string, string>} */
	const orgTiers = {};
	for (let round = 0; round < rounds; round++) {
		for (const { distance, mode } of configs) {
			const list = [];
			for (const target of TARGETS) {
				for (let n = 0; n < orgs; n++) {
					const id = `bench-loc-${runId}-r${round}-${mode}-${distance}ms-${target.short}-${n}`;
					orgTiers[id] = target.tier;
					list.push({ id, target, key: "" });
				}
			}
			plan.set(`${round}/${mode}/${distance}`, list);
		}
	}
	const tiers = { default: UNLIMITED_TIERS.default, ...Object.fromEntries(TARGETS.map((target) => [target.tier, target.config])) };

	const origin = await startLocationsOrigin({ delayMs: ORIGIN_DELAY_MS });
	const originHandle = { dispose: () => origin.dispose() };
	live?.add(originHandle);
	/** @type {Awaited<ReturnType<typeof startLocationsStack>> | undefined} */
	let stack;
	try {
		progress(`locations: starting ${distances.length} usage Worker(s) and ${configs.length * isolates} guard isolates in one Miniflare`);
		stack = await startLocationsStack({
			isolates,
			distances,
			modes: [...MODES],
			originUrl: origin.url,
			limiterFailure,
			verbose: Boolean(process.env.BENCH_VERBOSE),
			vars: {
				TIERS: tiers,
				ORG_TIERS: orgTiers,
				ADMIN_TOKEN: adminToken,
				// Load shedding far out of reach: the bench measures limits, not shedding.
				OVERLOAD: { max_in_flight: 10_000, org_share: 1 },
			},
		});
		const running = stack;
		live?.add(running);
		const url = running.url;
		progress(`locations: stack up in ${((performance.now() - started) / 1000).toFixed(1)} s`);

		// What each distance's wrapper delays: every RPC method of the real class.
		/** @type {string[]} */
		let wrapped = [];
		for (const distance of distances) {
			const found = await running.wrapped(distance);
			if (found.delayMs !== distance) throw new Error(`the usage Worker of ${distance} ms says its delay is ${found.delayMs} ms`);
			wrapped = found.wrapped;
		}
		const notYet = NAMED_METHODS.filter((name) => !wrapped.includes(name));
		progress(`locations: delayed usage-object methods: ${wrapped.join(", ")}${notYet.length > 0 ? ` (named by the design, not in the class yet: ${notYet.join(", ")})` : ""}`);

		// One key per organisation, created through the admin API (the key store is shared).
		const admin = running.guards(configs[0]?.distance ?? 0, configs[0]?.mode ?? "exact")[0];
		if (admin === undefined) throw new Error("no guard to create keys through");
		const everyOrg = [...plan.values()].flat();
		await mapLimited(everyOrg, 8, async (org) => {
			org.key = await createKey(url, admin.host, adminToken, org.id);
		});
		progress(`locations: ${everyOrg.length} keys created (${((performance.now() - started) / 1000).toFixed(1)} s)`);

		/** @type {Map<string, Sample[]>} "mode/distance/limit" → samples */
		const samples = new Map();
		/** @type {Map<string, Array<{ ms: number, cpuMs: number, sent: number, unavailable: number, refusedUnavailable: number }>>} "mode/distance" → its bursts */
		const bursts = new Map();
		/** @type {string[]} */
		const failures = [];
		for (let round = 0; round < rounds; round++) {
			const order = configs.map((_, i) => configs[(i + round) % configs.length]).filter((config) => config !== undefined);
			for (const { distance, mode } of order) {
				if (signal?.aborted) throw new Error(`stopped: ${signal.reason}`);
				const orgRuns = plan.get(`${round}/${mode}/${distance}`) ?? [];
				const guards = running.guards(distance, mode);
				const result = await runBurst({ url, guards, orgRuns, burst, isolates, mode, origin, adminToken, pid: running.pid });
				const unavailable = [...result.samples.values()].reduce((sum, sample) => sum + (sample.unavailable["200"] ?? 0), 0);
				const refusedUnavailable = [...result.samples.values()].reduce((sum, sample) => sum + (sample.unavailable["529"] ?? 0), 0);
				const burstKey = `${mode}/${distance}`;
				bursts.set(burstKey, [...(bursts.get(burstKey) ?? []), { ms: result.ms, cpuMs: result.cpuMs, sent: result.sent, unavailable, refusedUnavailable }]);
				for (const failure of result.failures) failures.push(`round ${round + 1}, ${mode}, ${distance} ms: ${failure}`);
				const line = [];
				for (const [org, sample] of result.samples) {
					const key = `${mode}/${distance}/${org.target.limit}`;
					samples.set(key, [...(samples.get(key) ?? []), sample]);
					line.push(`${org.target.short} ${formatValue(org.target, sample.admitted)}/${formatValue(org.target, org.target.value)}`);
				}
				progress(`locations round ${round + 1}/${rounds} ${mode}, object ${distance} ms away: ${line.join(", ")} (${result.sent} requests in ${result.ms.toFixed(0)} ms, workerd CPU ${result.cpuMs.toFixed(0)} ms${unavailable > 0 ? `, ${unavailable} admitted with the limiter unavailable` : ""}${refusedUnavailable > 0 ? `, ${refusedUnavailable} refused (529) with the limiter unavailable` : ""}${result.failures.length > 0 ? `, ${result.failures.length} FAILED` : ""})`);
			}
		}
		const stray = origin.untagged().length;
		if (stray > 0) failures.push(`the origin received ${stray} request(s) without the bench's tag`);
		const seconds = (performance.now() - started) / 1000;
		return { ...report({ samples, bursts, failures, rounds, isolates, orgs, burst, distances, limiterFailure, wrapped, notYet, seconds }), failed: failures.length > 0 };
	} finally {
		if (stack) {
			live?.delete(stack);
			await stack.dispose().catch((error) => progress(`could not stop the locations stack: ${error}`));
		}
		live?.delete(originHandle);
		await origin.dispose().catch(() => undefined);
	}
}

/**
 * Creates a key for `orgId` with the messages scope through the admin API; returns the key.
 * @param {URL} url @param {string} host @param {string} token @param {string} orgId
 */
async function createKey(url, host, token, orgId) {
	const body = JSON.stringify({ org_id: orgId, scopes: ["messages"], name: "locations bench" });
	const answer = await plainRequest(url, host, "POST", "/_guard/api/keys", { authorization: `Bearer ${token}`, "content-type": "application/json" }, body);
	if (answer.status !== 201) throw new Error(`creating a key for ${orgId}: ${answer.status} ${answer.text.slice(0, 300)}`);
	const key = JSON.parse(answer.text)?.key;
	if (typeof key !== "string") throw new Error(`creating a key for ${orgId}: no key in ${answer.text.slice(0, 300)}`);
	return key;
}

/**
 * Claims outstanding in the organisation's view of the admin API; undefined when the view has none.
 * @param {URL} url @param {string} host @param {string} token @param {string} orgId
 * @returns {Promise<{ outstanding: number | undefined } | { failure: string }>}
 */
async function claimsOf(url, host, token, orgId) {
	let answer = { status: 0, text: "" };
	// A usage object that did not answer in time is a 5xx the admin API says to retry: asked thrice.
	for (let attempt = 0; attempt < 3; attempt++) {
		answer = await plainRequest(url, host, "GET", `/_guard/api/orgs/${encodeURIComponent(orgId)}?minutes=1&days=1`, { authorization: `Bearer ${token}` });
		if (answer.status < 500) break;
		await new Promise((resolve) => setTimeout(resolve, 500));
	}
	if (answer.status !== 200) return { failure: `admin view of ${orgId}: ${answer.status} ${answer.text.slice(0, 200)}` };
	let view;
	try {
		view = JSON.parse(answer.text)?.org;
	} catch {
		return { failure: `admin view of ${orgId}: not JSON` };
	}
	if (view?.id !== orgId) return { failure: `admin view of ${orgId}: names ${JSON.stringify(view?.id)}` };
	const outstanding = view?.claims?.outstanding;
	return { outstanding: typeof outstanding === "number" ? outstanding : undefined };
}

/**
 * @param {URL} url @param {string} host @param {string} method @param {string} path
 * @param {Record<string, string>} headers @param {string} [body]
 * @returns {Promise<{ status: number, text: string }>}
 */
function plainRequest(url, host, method, path, headers, body) {
	return new Promise((resolve, reject) => {
		const req = request({ hostname: url.hostname, port: Number(url.port), path, method, headers: { host, ...headers }, agent: false, timeout: REQUEST_TIMEOUT_MS });
		req.on("response", (res) => {
			let text = "";
			res.setEncoding("utf8");
			res.on("data", (part) => {
				text += part;
			});
			res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
			res.on("error", reject);
		});
		req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer within ${REQUEST_TIMEOUT_MS} ms`)));
		req.on("error", reject);
		req.end(body);
	});
}

/**
 * Fires every organisation's burst at once, spread over the isolates in turn, checks every answer,
 * then measures each organisation's admitted usage at the origin and its claims outstanding.
 * @param {{
 *   url: URL,
 *   guards: import("./locations-stack.mjs").GuardIsolate[],
 *   orgRuns: OrgRun[],
 *   burst: number,
 *   isolates: number,
 *   mode: string,
 *   origin: Awaited<ReturnType<typeof startLocationsOrigin>>,
 *   adminToken: string,
 *   pid: number | undefined,
 * }} options
 */
async function runBurst({ url, guards, orgRuns, burst, isolates, mode, origin, adminToken, pid }) {
	/** @type {Array<{ org: OrgRun, i: number, o: number }>} */
	const queue = [];
	const counts = orgRuns.map((org) => Math.ceil(burst * fits(org.target)));
	const most = Math.max(0, ...counts);
	// Interleaved: the i-th request of every organisation, then the next, so all organisations are
	// in flight together; each organisation's i-th request goes to isolate (i + o) mod K, so its
	// requests go to every isolate in turn (and the organisations start on different isolates).
	for (let i = 0; i < most; i++) {
		orgRuns.forEach((org, o) => {
			if (i < (counts[o] ?? 0)) queue.push({ org, i, o });
		});
	}
	const startedAt = performance.now();
	const cpuBefore = processCpuMs(pid);
	/** @type {Map<string, { first: number, last: number, outcomes: Record<string, number>, unavailable: Record<string, number>, sent: number, isolates: Set<string> }>} */
	const perOrg = new Map(orgRuns.map((org) => [org.id, { first: Number.POSITIVE_INFINITY, last: 0, outcomes: {}, unavailable: {}, sent: 0, isolates: new Set() }]));
	/** @type {string[]} */
	const failures = [];
	await Promise.all(
		queue.map(async ({ org, i, o }) => {
			const guard = guards[(i + o) % guards.length];
			if (guard === undefined) return;
			const kind = KINDS[i % KINDS.length] ?? "json";
			const tag = `${org.id}/${i}/${kind}`;
			const tally = perOrg.get(org.id);
			if (tally === undefined) return;
			tally.first = Math.min(tally.first, performance.now());
			tally.sent++;
			tally.isolates.add(guard.name);
			const answer = await send({ url, host: guard.host, key: org.key, tag, body: messageBody(org.target, kind === "stream", tag), chunked: kind === "chunked" });
			tally.last = Math.max(tally.last, answer.endedAt);
			const checked = check(answer, kind, org.target.maxTokens);
			if ("failure" in checked) {
				failures.push(`${org.target.limit} ${guard.name}: ${checked.failure}`);
				tally.outcomes.failed = (tally.outcomes.failed ?? 0) + 1;
			} else {
				tally.outcomes[checked.outcome] = (tally.outcomes[checked.outcome] ?? 0) + 1;
				// Decided without the limiter: the usage object failed or did not answer in time, and the
				// route's failure policy let the request through (open) or refused it (closed: 529).
				if (answer.headers["x-guard-ratelimit"] === "unavailable") {
					tally.unavailable[checked.outcome] = (tally.unavailable[checked.outcome] ?? 0) + 1;
				}
			}
		}),
	);
	const ms = performance.now() - startedAt;
	for (const [id, tally] of perOrg) {
		if (tally.isolates.size < Math.min(guards.length, tally.sent)) failures.push(`${id}: sent through ${tally.isolates.size} of ${guards.length} isolates`);
	}
	const cpuMs = processCpuMs(pid) - cpuBefore;
	// The origin's records of these organisations are final once none is open.
	for (const deadline = performance.now() + 3000; performance.now() < deadline; ) {
		const open = orgRuns.some((org) => origin.recordsOf(org.id).some((record) => record.body === "pending" || record.answer === "pending"));
		if (!open) break;
		await new Promise((resolve) => setTimeout(resolve, 50));
	}
	// Claims outstanding, asked through one of the configuration's isolates, again until 0.
	const adminHost = guards[0]?.host ?? "";
	/** @type {Map<string, number | undefined>} */
	const outstanding = new Map();
	await Promise.all(
		orgRuns.map(async (org) => {
			const deadline = performance.now() + CLAIMS_WAIT_MS;
			for (;;) {
				const found = await claimsOf(url, adminHost, adminToken, org.id).catch((error) => ({ failure: `admin view of ${org.id}: ${error}` }));
				if ("failure" in found) {
					failures.push(found.failure);
					return;
				}
				outstanding.set(org.id, found.outstanding);
				if (found.outstanding === undefined || found.outstanding === 0 || performance.now() > deadline) return;
				await new Promise((resolve) => setTimeout(resolve, 250));
			}
		}),
	);
	/** @type {Map<OrgRun, Sample>} */
	const samples = new Map();
	for (const org of orgRuns) {
		const records = origin.recordsOf(org.id);
		const answered = records.filter((record) => record.answer === "answered");
		const tally = perOrg.get(org.id) ?? { first: startedAt, last: startedAt, outcomes: {}, unavailable: {}, sent: 0, isolates: new Set() };
		const burstMs = Math.max(0, tally.last - tally.first);
		const { target } = org;
		let admitted = 0;
		if (target.limit === "requests") admitted = answered.length;
		else if (target.limit === "input_tokens") admitted = records.filter((record) => record.body === "complete").reduce((sum, record) => sum + Math.ceil(record.bytes / 4), 0);
		else if (target.limit === "output_tokens") admitted = answered.reduce((sum, record) => sum + record.outputTokens, 0);
		else admitted = answered.reduce((sum, record) => sum + nanosOf(record.inputTokens, record.outputTokens), 0) / NANOS_PER_USD;
		const refill = (target.perMinute * burstMs) / 60_000;
		samples.set(org, { admitted, refill, bound: target.value + refill + leaseBound(target, mode, isolates), outstanding: outstanding.get(org.id), outcomes: tally.outcomes, unavailable: tally.unavailable, sent: tally.sent, ms: burstMs });
	}
	return { samples, failures, ms, cpuMs, sent: queue.length };
}

/**
 * Lease mode's overshoot bound for a leased limit (src/limits/client/lease-client.ts, README "Usage
 * limits"): min(rate × ttl, isolates × 2 × slice), a slice being maxFraction of the limit (at least
 * one unit). Money is never leased (budgets are claimed at the object in both modes): 0.
 * @param {Target} target @param {string} mode @param {number} isolates
 */
function leaseBound(target, mode, isolates) {
	if (mode !== "lease" || !target.leased) return 0;
	const slice = Math.max(1, Math.floor(target.value * LEASE_MAX_FRACTION));
	return Math.min((target.perMinute * LEASE_TTL_MS) / 60_000, isolates * 2 * slice);
}

/** @param {Target} target @param {number} value */
function formatValue(target, value) {
	if (target.limit === "money") return `$${value.toFixed(4)}`;
	return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

/**
 * @param {{
 *   samples: Map<string, Sample[]>,
 *   bursts: Map<string, Array<{ ms: number, cpuMs: number, sent: number, unavailable: number, refusedUnavailable: number }>>,
 *   failures: string[],
 *   rounds: number,
 *   isolates: number,
 *   orgs: number,
 *   burst: number,
 *   distances: number[],
 *   limiterFailure: string,
 *   wrapped: string[],
 *   notYet: string[],
 *   seconds: number,
 * }} results
 */
function report({ samples, bursts, failures, rounds, isolates, orgs, burst, distances, limiterFailure, wrapped, notYet, seconds }) {
	const rows = [];
	let limitRows = 0;
	let limitsMissed = 0;
	let claimsMissed = 0;
	let claimsAbsent = 0;
	for (const mode of MODES) {
		for (const distance of distances) {
			for (const target of TARGETS) {
				const list = samples.get(`${mode}/${distance}/${target.limit}`) ?? [];
				if (list.length === 0) {
					rows.push([mode, `${distance} ms`, label(target), formatValue(target, target.value), "—", "—", "—", "**not run**", "—", "—"]);
					continue;
				}
				const admitted = list.map((sample) => sample.admitted);
				const ratios = admitted.map((value) => value / target.value);
				const met = list.filter((sample) => sample.admitted <= sample.bound + 1e-9).length;
				const lease = leaseBound(target, mode, isolates);
				const refill = Math.max(...list.map((sample) => sample.refill));
				const goal = [`≤ ${formatValue(target, target.value)}`, lease > 0 ? `+ lease ${formatValue(target, lease)}` : "", target.perMinute > 0 ? `+ refill (≤ ${refill.toFixed(refill < 10 ? 2 : 0)})` : ""].filter(Boolean).join(" ");
				const claims = list.map((sample) => sample.outstanding);
				const claimsKnown = claims.every((value) => value !== undefined);
				const claimsMax = claimsKnown ? Math.max(.../** @type {number[]} */ (claims)) : undefined;
				const claimsMet = claimsMax === 0;
				/** @type {Record<string, number>} */
				const outcomes = {};
				/** @type {Record<string, number>} */
				const unavailable = {};
				for (const sample of list) {
					for (const [name, count] of Object.entries(sample.outcomes)) outcomes[name] = (outcomes[name] ?? 0) + count;
					for (const [name, count] of Object.entries(sample.unavailable)) unavailable[name] = (unavailable[name] ?? 0) + count;
				}
				const sent = list.reduce((sum, sample) => sum + sample.sent, 0);
				const failOpen = unavailable["200"] ?? 0;
				limitRows++;
				if (met < list.length) limitsMissed++;
				if (!claimsKnown) claimsAbsent++;
				else if (!claimsMet) claimsMissed++;
				rows.push([
					mode,
					`${distance} ms`,
					label(target),
					formatValue(target, target.value),
					target.limit === "money" ? `$${median(admitted).toFixed(4)} [${Math.min(...admitted).toFixed(4)}–${Math.max(...admitted).toFixed(4)}]` : spread(admitted, 0),
					spread(ratios, 2, "×"),
					goal,
					`${met === list.length ? "yes" : "**no**"} (${met}/${list.length}${failOpen > 0 ? `; ${failOpen} admitted with the limiter unavailable` : ""})`,
					claimsKnown ? `${claimsMax} ${claimsMet ? "(yes)" : "(**no**)"}` : "**not reported**",
					`${sent}: ${Object.entries(outcomes)
						.sort()
						.map(([name, count]) => `${name}×${count}${unavailable[name] ? ` (${unavailable[name]} limiter unavailable)` : ""}`)
						.join(", ")}`,
				]);
			}
		}
	}
	const samplesPerRow = rounds * orgs;
	const method = [
		`Method: one Miniflare (one workerd process) holds, per distance, a Worker defining the usage object (\`scripts/bench/locations-usage-worker.js\`: the guard's own \`UsageObject\`, every RPC method of whose prototype chain waits the distance before running: ${wrapped.map((name) => `\`${name}\``).join(", ")}${notYet.length > 0 ? `; named by the design but not in the class when this ran: ${notYet.map((name) => `\`${name}\``).join(", ")}` : ""}), and per (distance, mode) **${isolates} guard Workers** (the guard's bundle unchanged, \`LIMITER_MODE\` exact or lease), each its own isolate with its own module state and lease cache, all bound by \`scriptName\` to that distance's \`USAGE\` namespace. The origin is a Node server that records every request it receives and answers \`/v1/messages\` after ${ORIGIN_DELAY_MS} ms with known usage (input = ⌈body bytes / 4⌉, output = the request's \`max_tokens\`), as JSON or, for \`"stream": true\`, an event stream.`,
		`Each limit is measured on a tier of its own where it is small and every other limit generous (TIERS/ORG_TIERS bindings): requests ${TARGETS[0]?.value}/min (${TARGETS[0]?.bodyBytes} B bodies), input ${TARGETS[1]?.value} tokens/min (${(TARGETS[1]?.bodyBytes ?? 0) / 1024} KiB bodies), output ${TARGETS[2]?.value} tokens/min (\`max_tokens\` ${TARGETS[2]?.maxTokens}), money $${TARGETS[3]?.value}/day at $${PRICE.input}/$${PRICE.output} per million input/output tokens (${TARGETS[3]?.bodyBytes} B bodies, \`max_tokens\` ${TARGETS[3]?.maxTokens}). Per run, ${orgs} fresh organisation(s) per limit fire at once, all together, ${burst}× what their limit holds as concurrent \`POST /v1/messages\`, in turn JSON with a \`Content-Length\`, chunked uploads (${CHUNK_PIECES} writes ${CHUNK_GAP_MS} ms apart) and streams, sent to the ${isolates} isolates in turn. ${rounds} round(s); in each, every (distance, mode) runs once, the order rotated every round; ${samplesPerRow} sample(s) per row, fresh organisations each.`,
		`Admitted, measured at the origin: requests = requests it answered; input tokens = Σ ⌈bytes / 4⌉ of bodies it received whole; output tokens = the output it reported for requests it answered; money = that usage at the tier's prices. Cells: median [min–max] over the samples. Goal: ≤ the limit plus what it refilled during the burst (rate × the burst's duration; money does not refill); in lease mode, for requests, input and output tokens, plus lease mode's bound min(rate × ${LEASE_TTL_MS / 1000} s, isolates × 2 × slice), a slice being ${LEASE_MAX_FRACTION * 100}% of the limit (at least 1) (src/limits/client/lease-client.ts, README "Usage limits"). Money is never leased (README "Usage limits": budgets are claimed at the object in both modes), so both modes are held to the exact goal for it. For these small limits one growth slice of exact mode is not added: a claim that does not fit is refused, so admitted ≤ limit. Met: every sample within its goal. Claims outstanding: \`claims.outstanding\` of \`GET /_guard/api/orgs/:id\` after the burst (asked again for up to ${CLAIMS_WAIT_MS / 1000} s until 0), the largest over the samples; goal 0. Answers: every request's answer is checked (a \`request-id\`; \`200\` with the origin's whole message or event stream, or \`429 rate_limit_error\` / \`529 overloaded_error\` in the error envelope); anything else fails the run.`,
	].join("\n\n");
	const header = ["Mode", "Object", "Limit", "Limit value", "Admitted", "Admitted ÷ limit", "Goal", "Met?", "Claims outstanding (max)", "Answers (sent: status×n)"];
	const burstRows = [];
	for (const mode of MODES) {
		for (const distance of distances) {
			const list = bursts.get(`${mode}/${distance}`) ?? [];
			if (list.length === 0) continue;
			const share = list.map((entry) => (100 * entry.cpuMs) / entry.ms).filter((value) => Number.isFinite(value));
			burstRows.push([
				mode,
				`${distance} ms`,
				String(list.length),
				String(median(list.map((entry) => entry.sent))),
				spread(list.map((entry) => entry.ms), 0, " ms"),
				share.length > 0 ? spread(share, 0, "%") : "unknown",
				`${list.reduce((sum, entry) => sum + entry.unavailable, 0)} / ${list.reduce((sum, entry) => sum + entry.refusedUnavailable, 0)}`,
			]);
		}
	}
	const bursting = `Bursts: all of one run's organisations at once. workerd CPU: the workerd process's CPU time over the burst's wall time (100% = one core; every isolate and usage object runs in that one process). Limiter unavailable: answers with \`x-guard-ratelimit: unavailable\`, decided without the usage object because a call to it failed or took longer than the limiter's bound (500 ms), under the route's \`limiter_failure\` policy, here **\`${limiterFailure}\`** (\`--limiter-failure\`; wrangler.toml's default is \`open\`): \`open\` admits such a request unchecked, so a limit missed with such admissions is missed by that policy under load (a distant object, a busy machine), not by the claim arithmetic; \`closed\` refuses it with \`529\`.`;
	const burstHeader = ["Mode", "Object", "Runs", "Requests per run", "Burst wall time", "workerd CPU", "Limiter unavailable: admitted / refused"];
	const claimsNote = claimsAbsent > 0 ? ` Claims outstanding: the admin API's organisation view has no \`claims\` in ${claimsAbsent} row(s) (**not reported**, a missed goal).` : claimsMissed > 0 ? ` Claims outstanding: **not 0** after the burst in ${claimsMissed} row(s).` : " Claims outstanding: 0 after every burst.";
	const summary = `Limits: ${limitsMissed === 0 ? `every goal met (${limitRows} rows).` : `**${limitsMissed} of ${limitRows} rows missed** (marked **no**).`}${claimsNote} Whole run: ${seconds.toFixed(0)} s.`;
	const failed = failures.length > 0 ? `\n\n**FAILED**: ${failures.length} problem(s); the first: ${failures.slice(0, 5).join("; ")}` : "";
	return { text: `${method}\n\n${table(header, rows)}\n\n${summary}\n\n${bursting}\n\n${table(burstHeader, burstRows)}${failed}\n` };
}

/** @param {Target} target */
function label(target) {
	return { requests: "requests", input_tokens: "input tokens", output_tokens: "output tokens", money: "money (USD/day)" }[target.limit];
}

/**
 * @template T
 * @param {T[]} items @param {number} limit @param {(item: T) => Promise<void>} work
 */
async function mapLimited(items, limit, work) {
	let next = 0;
	await Promise.all(
		Array.from({ length: Math.min(limit, items.length) }, async () => {
			while (next < items.length) {
				const item = items[next++];
				if (item !== undefined) await work(item);
			}
		}),
	);
}
