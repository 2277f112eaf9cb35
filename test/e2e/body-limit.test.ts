import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { request } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalServer, startLocalServer } from "./local-server";

const REQUEST_ID = /^req_[0-9A-Za-z]{24}$/;
const MIB = 1024 * 1024;
let server: LocalServer;

beforeAll(async () => {
	server = await startLocalServer();
});

afterAll(async () => {
	await server?.stop();
});

interface Answer {
	status: number;
	requestId: string | undefined;
	body: string;
	sent: number;
}

/**
 * Uploads `total` bytes in 64 KiB chunks over one HTTP/1.1 connection, chunked unless `declare`,
 * as curl does: it keeps writing until the server answers, then stops.
 */
function upload(path: string, total: number, declare: boolean): Promise<Answer> {
	return new Promise((resolve, reject) => {
		const url = new URL(path, server.url);
		const headers: Record<string, string> = {
			"content-type": "application/json",
			"anthropic-version": "2023-06-01",
			"x-api-key": "sk-demo-key",
		};
		if (declare) headers["content-length"] = String(total);
		const req = request(url, { method: "POST", headers, agent: false });
		let sent = 0;
		let answered = false;
		const chunk = Buffer.alloc(64 * 1024, 0x20);
		const pump = () => {
			while (!answered && sent < total) {
				const size = Math.min(chunk.byteLength, total - sent);
				sent += size;
				if (!req.write(size === chunk.byteLength ? chunk : chunk.subarray(0, size))) return void req.once("drain", pump);
			}
			if (!answered) req.end();
		};
		req.on("response", (res) => {
			answered = true;
			let body = "";
			res.setEncoding("utf8");
			res.on("data", (text: string) => {
				body += text;
			});
			res.on("end", () => {
				resolve({ status: res.statusCode ?? 0, requestId: res.headers["request-id"] as string | undefined, body, sent });
				req.destroy();
			});
		});
		req.on("error", (error) => {
			if (!answered) reject(error);
		});
		pump();
	});
}

/** Sends one request on a raw socket with a declared length and any body, then reads the answer. */
function rawPost(declared: number, body: string, halfClose: boolean): Promise<string> {
	return new Promise((resolve) => {
		const { hostname, port } = new URL(server.url);
		const socket = connect(Number(port), hostname);
		let answer = "";
		socket.on("data", (data: Buffer) => {
			answer += data.toString();
		});
		socket.on("close", () => resolve(answer));
		socket.on("error", () => resolve(answer));
		socket.write(
			`POST /v1/messages HTTP/1.1\r\nhost: guard\r\ncontent-type: application/json\r\nanthropic-version: 2023-06-01\r\n` +
				`x-api-key: sk-demo-key\r\ncontent-length: ${declared}\r\nconnection: close\r\n\r\n${body}`,
		);
		if (halfClose) socket.end();
	});
}

function curlChunked(path: string, file: string): Promise<{ code: number; output: string }> {
	return new Promise((resolve) => {
		const curl = spawn("curl", [
			"-sS",
			"-i",
			"-X",
			"POST",
			"-H",
			"Transfer-Encoding: chunked",
			"-H",
			"content-type: application/json",
			"-H",
			"x-api-key: sk-demo-key",
			"-H",
			"anthropic-version: 2023-06-01",
			"--data-binary",
			`@${file}`,
			new URL(path, server.url).href,
		]);
		let output = "";
		curl.stdout.on("data", (data: Buffer) => {
			output += data.toString();
		});
		curl.stderr.on("data", (data: Buffer) => {
			output += data.toString();
		});
		curl.on("close", (code) => resolve({ code: code ?? -1, output }));
	});
}

function expectTooLarge(answer: Answer, cap: number) {
	expect(answer.status).toBe(413);
	expect(answer.requestId).toMatch(REQUEST_ID);
	const body = JSON.parse(answer.body) as { type: string; error: { type: string; message: string }; request_id: string };
	expect(body.type).toBe("error");
	expect(body.error.type).toBe("request_too_large");
	expect(body.error.message).toContain(`limit of ${cap} bytes`);
	expect(body.request_id).toBe(answer.requestId);
}

describe("body caps through npm start's server, over a real socket", () => {
	it("delivers the 413 envelope for a chunked upload over the cap, every time", async () => {
		for (let i = 0; i < 5; i++) expectTooLarge(await upload("/v1/messages", 40 * MIB, false), 33_554_432);
	});

	it("delivers the 413 for a declared length over the cap before taking the body", async () => {
		const answer = await upload("/v1/messages", 40 * MIB, true);
		expectTooLarge(answer, 33_554_432);
		// The answer came while the client was still sending: the guard did not wait for the body.
		expect(answer.sent).toBeLessThan(40 * MIB);
	});

	it("answers a chunked upload over the cap while it is still arriving", async () => {
		const answer = await upload("/v1/messages", 64 * MIB, false);
		expectTooLarge(answer, 33_554_432);
		expect(answer.sent).toBeLessThan(64 * MIB);
	});

	it("delivers curl's chunked upload over the cap as the 413 envelope", async () => {
		const file = join(tmpdir(), `edge-guard-40mib-${process.pid}.json`);
		writeFileSync(file, Buffer.alloc(40 * MIB, 0x20));
		for (let i = 0; i < 3; i++) {
			const { code, output } = await curlChunked("/v1/messages", file);
			expect(code).toBe(0);
			expect(output).toMatch(/^HTTP\/1\.1 413 /);
			expect(output).toContain('"type":"request_too_large"');
			expect(output).toMatch(/request-id: req_[0-9A-Za-z]{24}/i);
		}
	});

	it("delivers an early 404 to a large chunked upload intact", async () => {
		const answer = await upload("/v1/nowhere", 48 * MIB, false);
		expect(answer.status).toBe(404);
		expect(JSON.parse(answer.body).error.type).toBe("not_found_error");
	});

	it("frames a body by its Content-Length: workerd cuts a longer one, and one that ends short never reaches the origin as whole", async () => {
		const message = JSON.stringify({ model: "m", max_tokens: 5, messages: [{ role: "user", content: "framed" }] });
		const declared = message.padEnd(1000, " ");
		const longer = await rawPost(declared.length, `${declared}${"x".repeat(500)}`, false);
		// The origin got exactly the declared 1000 bytes (valid JSON); the extra bytes never joined the body.
		expect(longer).toMatch(/^HTTP\/1\.1 200 /);
		expect(longer).toContain('"type":"message"');
		// Closing its side before the body is complete is leaving, as nginx and Cloudflare's edge take
		// it: the request is cancelled (its upload fails at the origin) and no answer is owed.
		const shorter = await rawPost(1000, message, true);
		expect(shorter).not.toMatch(/^HTTP\/1\.1 200 /);
	});

	it("forwards a chunked upload just under the cap", async () => {
		const answer = await upload("/v1/messages/count_tokens", 2 * MIB, false);
		// The demo origin reads it whole and refuses it as JSON: the body reached the origin.
		expect(answer.status).toBe(400);
		expect(answer.body).toContain("invalid_request_error");
	});
});
