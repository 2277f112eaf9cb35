// Decompression bombs (issue 20, item 3): gzip request bodies that decode to far more than the
// route's cap, sent to a guard whose Messages route decodes gzip, one workerd per case; the growth
// of that workerd's peak RSS is what the bombs cost. Returns the markdown of its BENCHMARKS.md section.
import { request } from "node:http";
import { performance } from "node:perf_hooks";
import { createGzip } from "node:zlib";
import { readMemory, sampleRss } from "./memory.mjs";
import { mib, table, yesNo } from "./report.mjs";
import { prepareSubjects, startSubject } from "./stack.mjs";

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;
/** The bound on what the bombs may cost the process. */
const GOAL = 32 * MIB;
/** A guard that decodes whole is stopped once workerd grows this much. */
const EXPOSURE = 6 * GIB;
const PATH = "/v1/messages";

export const BOMBS_SECTION = "## Decompression bombs (issue 20)";

/**
 * `plain`: the reference, a body of that many bytes sent as it is; its Content-Length is over the
 * cap, so it is refused before a byte is read: what the connections alone cost.
 */
const CASES = [
	{ label: "reference: 40 MiB uncompressed, refused by its Content-Length", decoded: 40 * MIB, count: 1, plain: true },
	{ label: "reference: four of those at once", decoded: 40 * MIB, count: 4, plain: true },
	{ label: "one 2 GiB bomb", decoded: 2 * GIB, count: 1, plain: false },
	{ label: "four 1 GiB bombs at once", decoded: GIB, count: 4, plain: false },
];

/**
 * The gzip of `bytes` zero bytes, compressed as a client would (level 9).
 * @param {number} bytes
 * @returns {Promise<Buffer>}
 */
function gzipZeros(bytes) {
	return new Promise((resolve, reject) => {
		const gzip = createGzip({ level: 9 });
		/** @type {Buffer[]} */
		const out = [];
		gzip.on("data", (chunk) => out.push(chunk));
		gzip.on("end", () => resolve(Buffer.concat(out)));
		gzip.on("error", reject);
		const block = Buffer.alloc(16 * MIB);
		let left = bytes;
		const write = () => {
			while (left > 0) {
				const chunk = left >= block.length ? block : block.subarray(0, left);
				left -= chunk.length;
				if (!gzip.write(chunk)) return void gzip.once("drain", write);
			}
			gzip.end();
		};
		write();
	});
}

/**
 * POSTs a gzip body with its Content-Length; never rejects.
 * @param {URL} url
 * @param {Record<string, string>} headers
 * @param {Buffer} body
 * @param {AbortSignal} signal
 * @returns {Promise<{ status: number, ms: number, body: string, error?: string }>}
 */
function send(url, headers, body, signal, encoded = true) {
	return new Promise((resolve) => {
		const started = performance.now();
		const req = request(new URL(PATH, url), {
			method: "POST",
			headers: { ...headers, ...(encoded ? { "content-encoding": "gzip" } : {}), "content-length": String(body.length) },
			agent: false,
			signal,
		});
		let text = "";
		req.on("response", (res) => {
			res.setEncoding("utf8");
			res.on("data", (chunk) => {
				if (text.length < 4096) text += chunk;
			});
			res.on("end", () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started, body: text }));
			res.on("error", (error) => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started, body: text, error: String(error) }));
		});
		req.on("error", (error) => resolve({ status: 0, ms: performance.now() - started, body: text, error: String(error) }));
		req.end(body);
	});
}

/**
 * @param {{ progress: (message: string) => void, live: Set<{ dispose: () => Promise<void> }>, signal: AbortSignal }} ctx
 */
export async function bombsBench(ctx) {
	const prepared = await prepareSubjects();
	const routes = /** @type {any[]} */ (prepared.guardOptions.bindings?.ROUTES ?? []);
	const decoding = routes.map((route) => (route.path === PATH && route.methods?.includes("POST") ? { ...route, content_encodings: ["gzip"] } : route));
	const guard = { ...prepared, guardOptions: { ...prepared.guardOptions, bindings: { ...prepared.guardOptions.bindings, ROUTES: decoding } } };
	const cap = routes.find((route) => route.path === PATH)?.max_body_bytes ?? 0;
	/** @type {Map<number, Buffer>} */
	const bombs = new Map();
	for (const { decoded, plain } of CASES) if (!plain && !bombs.has(decoded)) bombs.set(decoded, await gzipZeros(decoded));
	const small = await gzipZeros(64 * 1024);
	const rows = [];
	let failed = false;
	for (const testCase of CASES) {
		const subject = await startSubject("guard", guard);
		ctx.live.add(subject);
		try {
			const headers = subject.headersFor(PATH);
			for (let i = 0; i < 2; i++) await send(subject.url, headers, small, ctx.signal);
			const base = readMemory(subject.pid).peak;
			const exposure = new AbortController();
			const sampler = sampleRss(subject.pid, { everyMs: 5, limit: base + EXPOSURE, onOver: () => exposure.abort() });
			const bomb = testCase.plain ? Buffer.alloc(testCase.decoded) : /** @type {Buffer} */ (bombs.get(testCase.decoded));
			const signal = AbortSignal.any([ctx.signal, exposure.signal]);
			const started = performance.now();
			const results = await Promise.all(Array.from({ length: testCase.count }, () => send(subject.url, headers, bomb, signal, !testCase.plain)));
			const ms = performance.now() - started;
			const sampled = sampler.stop();
			const growth = readMemory(subject.pid).peak - base;
			const statuses = results.map((result) => (result.error ? `${result.status || "no answer"} (${result.error})` : String(result.status)));
			const met = growth <= GOAL && results.every((result) => result.status === 413);
			if (!testCase.plain) failed ||= !met;
			ctx.progress(`bombs ${testCase.label}: ${statuses.join(", ")}, +${mib(growth)} in ${ms.toFixed(0)} ms`);
			rows.push([
				testCase.label,
				testCase.plain ? `${mib(bomb.length)} (not encoded)` : `${(bomb.length / MIB).toFixed(2)} MiB → ${mib(testCase.decoded)}`,
				statuses.join(" / "),
				`${ms.toFixed(0)} ms`,
				mib(base),
				`**${mib(growth)}**`,
				mib(sampled),
				testCase.plain ? "(reference)" : `≤ ${mib(GOAL)}, every answer 413`,
				testCase.plain ? "—" : yesNo(met),
			]);
		} finally {
			ctx.live.delete(subject);
			await subject.dispose().catch((error) => ctx.progress(`could not stop the guard: ${error}`));
		}
	}
	const text = `Method: the guard (\`src/index.ts\` bundled as for deployment, \`wrangler.toml\`'s bindings with
\`content_encodings = ["gzip"]\` added to \`POST ${PATH}\`, cap ${cap} bytes; usage limits raised as
for the body caps) alone in a fresh workerd per case, in front of the byte-counting sink. Each bomb
is the gzip (level 9) of zero bytes, sent by Node's \`node:http\` with its Content-Length and
\`Content-Encoding: gzip\`, one connection each. After two 64 KiB warm-up bombs, the peak RSS
(\`VmHWM\`) is read; then the case's bombs are sent at once; the growth is the peak after all
answers over the peak before (VmRSS sampled every 5 ms as a cross-check; a run growing by
${mib(EXPOSURE)} is stopped). The reference rows send 40 MiB uncompressed with its Content-Length
(over the cap: refused before a byte is read), for what the connections alone cost.

${table(["Case", "Body (sent → decoded)", "Answers", "Time to all answers", "Peak RSS before", "Growth", "Sampled max RSS (5 ms)", "Goal", "Met?"], rows)}`;
	return { text, failed };
}
