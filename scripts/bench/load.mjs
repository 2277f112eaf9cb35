// Keep-alive load from autocannon, run programmatically, with every response checked: status 200,
// where asked a `request-id` header, and where the request has one, a check of the body's shape. Latencies are kept per response at full precision
// (autocannon's own histogram rounds to whole milliseconds, too coarse for sub-millisecond costs).
import autocannon from "autocannon";
import { performance } from "node:perf_hooks";

/**
 * @typedef {object} LoadRequest
 * @property {"GET" | "POST"} method
 * @property {string} path
 * @property {Record<string, string>} headers
 * @property {string} [body]
 * @property {(body: string) => boolean} [check] the answer's body is what was asked for (a shape check); false fails the run
 */

/**
 * @typedef {object} LoadResult
 * @property {number} responses answers received whole
 * @property {number} seconds wall time of the run
 * @property {number} rps responses per second
 * @property {Float64Array} latencies every response's time, ms
 * @property {string[]} failures what was wrong (an empty list: every response checked out)
 * @property {number} clientCpuMs this process's CPU time (user + system) during the run: the load generator's own cost
 */

/**
 * Drives `url` with `connections` keep-alive connections for `seconds`, or until `amount` responses
 * when given (a fixed-count run). A response that is not a 200 (or lacks `request-id` when
 * `requireRequestId`, or fails the request's body `check`), a connection error or a timeout is a
 * failure of the run; the caller reports it as failed rather than as a number.
 * @param {{ url: URL, request: LoadRequest, connections: number, seconds: number, amount?: number, requireRequestId: boolean }} options
 * @returns {Promise<LoadResult>}
 */
export async function drive({ url, request, connections, seconds, amount, requireRequestId }) {
	const latencies = [];
	// A fixed-count run ends on autocannon's next one-second tick, not at its last response: the rate is taken to the last response.
	let lastAt = 0;
	/** @type {Map<string, number>} */
	const problems = new Map();
	const note = (/** @type {string} */ problem) => problems.set(problem, (problems.get(problem) ?? 0) + 1);
	let missingId = 0;
	const started = performance.now();
	const cpuBefore = process.cpuUsage();
	const instance = autocannon({
		url: new URL(request.path, url).href,
		method: request.method,
		headers: request.headers,
		...(request.body === undefined ? {} : { body: request.body }),
		connections,
		pipelining: 1,
		...(amount === undefined ? { duration: seconds } : { amount }),
		...(request.check === undefined ? {} : { verifyBody: request.check }),
		timeout: 10,
		/** @param {import("node:events").EventEmitter} client */
		setupClient(client) {
			client.on("headers", (/** @type {{ headers: string[] }} */ info) => {
				if (!requireRequestId) return;
				let found = false;
				for (let i = 0; i < info.headers.length; i += 2) {
					if (info.headers[i]?.toLowerCase() === "request-id" && info.headers[i + 1]) found = true;
				}
				if (!found) missingId++;
			});
		},
	});
	instance.on("response", (/** @type {unknown} */ _client, /** @type {number} */ status, /** @type {number} */ _bytes, /** @type {number} */ ms) => {
		latencies.push(ms);
		lastAt = performance.now();
		if (status !== 200) note(`status ${status}`);
	});
	instance.on("reqError", (/** @type {Error} */ error) => note(`error: ${error.message}`));
	const result = await instance;
	const elapsed = ((amount === undefined || lastAt === 0 ? performance.now() : lastAt) - started) / 1000;
	const cpu = process.cpuUsage(cpuBefore);
	if (missingId > 0) problems.set("no request-id header", missingId);
	if (result.mismatches > 0) problems.set("a body not of the expected shape", result.mismatches);
	if (result.timeouts > 0 && ![...problems.keys()].some((key) => key.includes("timed out"))) note(`${result.timeouts} timeouts`);
	if (latencies.length === 0) note("no response at all");
	const failures = [...problems].map(([problem, count]) => `${problem} (${count}×)`);
	return { responses: latencies.length, seconds: elapsed, rps: latencies.length / elapsed, latencies: Float64Array.from(latencies), failures, clientCpuMs: (cpu.user + cpu.system) / 1000 };
}
