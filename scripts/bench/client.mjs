// The load generator: real HTTP/1.1 over loopback from Node, one connection per request.
import { request } from "node:http";
import { connect } from "node:net";
import { performance } from "node:perf_hooks";

const MIB = 1024 * 1024;
// One reused buffer: the client never allocates per chunk, so it is not what limits throughput.
const BLOCK = Buffer.alloc(MIB, 0x61);

/**
 * @typedef {object} UploadResult
 * @property {number} status 0 when no answer came
 * @property {number} ms from the request's start to the answer's end (or the failure)
 * @property {string} body the answer's body (at most 64 KiB kept)
 * @property {number} sent body bytes the client flushed in all
 * @property {number | undefined} sentAtAnswer body bytes flushed when the answer's status arrived
 * @property {string | undefined} error why the exchange failed, if it did
 */

/**
 * The pieces of a body of exactly `bytes` bytes: the frame's head, then the reused filler block
 * (`a`s), then the frame's tail; without a frame, filler only.
 * @param {number} bytes
 * @param {{ head: Buffer, tail: Buffer } | undefined} frame
 * @returns {Generator<Buffer>}
 */
function* bodyChunks(bytes, frame) {
	const head = frame?.head ?? Buffer.alloc(0);
	const tail = frame?.tail ?? Buffer.alloc(0);
	if (head.length > 0) yield head;
	for (let left = bytes - head.length - tail.length; left > 0; left -= MIB) yield left >= MIB ? BLOCK : BLOCK.subarray(0, left);
	if (tail.length > 0) yield tail;
}

/**
 * Uploads `bytes` bytes to `url` + `path` with POST, chunked (no Content-Length) unless
 * `declareLength`, writing the reused 1 MiB block with backpressure; with a `frame`, the body is
 * that opening, filler, and that closing (a JSON document whose bulk is one long string). Stops
 * sending once an error status arrives (as curl does), ending the body there. Never rejects: a
 * failure is a result.
 * @param {{ url: URL, path: string, headers: Record<string, string>, bytes: number, declareLength: boolean, timeoutMs: number, signal?: AbortSignal, frame?: { head: Buffer, tail: Buffer } }} options
 * @returns {Promise<UploadResult>}
 */
export function upload({ url, path, headers: given, bytes, declareLength, timeoutMs, signal, frame }) {
	return new Promise((resolve) => {
		/** @type {Record<string, string>} */
		const headers = { ...given };
		if (declareLength) headers["content-length"] = String(bytes);
		const started = performance.now();
		const req = request(new URL(path, url), { method: "POST", headers, agent: false });
		let sent = 0;
		let queued = 0;
		/** @type {number | undefined} */
		let sentAtAnswer;
		let stopped = false;
		let body = "";
		let settled = false;
		/** @param {number} status @param {string} [error] */
		const finish = (status, error) => {
			if (settled) return;
			settled = true;
			clearTimeout(timer);
			signal?.removeEventListener("abort", onAbort);
			resolve({ status, ms: performance.now() - started, body, sent, sentAtAnswer, error });
			req.destroy();
		};
		const onAbort = () => finish(0, `aborted: ${signal?.reason ?? "by the bench"}`);
		const timer = setTimeout(() => finish(0, `no complete answer within ${timeoutMs} ms`), timeoutMs);
		signal?.addEventListener("abort", onAbort);
		const chunks = bodyChunks(bytes, frame);
		const pump = () => {
			while (!stopped) {
				const next = chunks.next();
				if (next.done) return void req.end();
				const size = next.value.length;
				queued += size;
				const more = req.write(next.value, () => {
					sent += size;
				});
				if (!more) return void req.once("drain", pump);
			}
		};
		req.on("response", (res) => {
			sentAtAnswer = sent;
			if ((res.statusCode ?? 0) >= 400 && queued < bytes) {
				stopped = true;
				req.end();
			}
			res.setEncoding("utf8");
			res.on("data", (text) => {
				if (body.length < 64 * 1024) body += text;
			});
			res.on("end", () => finish(res.statusCode ?? 0));
			res.on("error", (error) => finish(res.statusCode ?? 0, String(error)));
		});
		req.on("error", (error) => finish(0, String(error)));
		pump();
	});
}

/**
 * Sends only the headers of an oversized upload that waits for `100 Continue`, on a raw socket,
 * and times how long the status line of a final answer (not `100 Continue`) takes to arrive.
 * @param {{ url: URL, path: string, headers: Record<string, string>, contentLength: number, timeoutMs: number }} options
 * @returns {Promise<{ ms: number, statusLine: string }>}
 */
export function timeEarlyAnswer({ url, path, headers, contentLength, timeoutMs }) {
	return new Promise((resolve, reject) => {
		const socket = connect({ host: url.hostname, port: Number(url.port) });
		let received = "";
		let started = 0;
		const timer = setTimeout(() => fail(new Error(`no final status line within ${timeoutMs} ms`)), timeoutMs);
		/** @param {Error} error */
		const fail = (error) => {
			clearTimeout(timer);
			socket.destroy();
			reject(error);
		};
		socket.setNoDelay(true);
		socket.on("connect", () => {
			const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
			const head =
				`POST ${path} HTTP/1.1\r\nhost: ${url.host}\r\n${lines.join("")}` +
				`content-length: ${contentLength}\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n`;
			started = performance.now();
			socket.write(head);
		});
		socket.on("data", (chunk) => {
			received += chunk.toString("latin1");
			const statusLine = finalStatusLine(received);
			if (statusLine === undefined) return;
			const ms = performance.now() - started;
			clearTimeout(timer);
			socket.destroy();
			resolve({ ms, statusLine });
		});
		socket.on("error", fail);
		socket.on("end", () => fail(new Error(`connection ended before a final status line: ${JSON.stringify(received.slice(0, 200))}`)));
	});
}

/**
 * The first status line that is not `1xx`, once it has arrived whole.
 * @param {string} received
 */
function finalStatusLine(received) {
	for (const match of received.matchAll(/HTTP\/1\.1 (\d{3})[^\r\n]*\r\n/g)) {
		if (!match[1]?.startsWith("1")) return match[0].trimEnd();
	}
	return undefined;
}
