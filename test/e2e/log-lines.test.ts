import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalServer, startLocalServer } from "./local-server";

const DEMO_KEY = "sk-demo-key";
const BAD_KEY = "sk-ant-api03-not-a-key-log-lines-e2e";
const HEADERS = { "anthropic-version": "2023-06-01" };
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
	requestId: string;
}

async function get(path: string, key: string): Promise<Answer> {
	const response = await fetch(new URL(path, server.url), { headers: { ...HEADERS, "x-api-key": key } });
	await response.arrayBuffer();
	return { status: response.status, requestId: response.headers.get("request-id") ?? "" };
}

/** Declares a body far over the 32 MiB cap of POST /v1/messages, sends none, and takes the answer. */
function declareHugeBody(): Promise<Answer> {
	return new Promise((resolve, reject) => {
		let answered = false;
		const req = request(new URL("/v1/messages", server.url), {
			method: "POST",
			headers: { ...HEADERS, "x-api-key": DEMO_KEY, "content-type": "application/json", "content-length": String(64 * MIB) },
			agent: false,
		});
		req.on("response", (res) => {
			answered = true;
			res.resume();
			resolve({ status: res.statusCode ?? 0, requestId: String(res.headers["request-id"] ?? "") });
			req.destroy();
		});
		req.on("error", (error) => {
			if (!answered) reject(error);
		});
		req.flushHeaders();
	});
}

/** The output's lines that parse as JSON objects. */
function jsonLines(output: string): Record<string, unknown>[] {
	const objects: Record<string, unknown>[] = [];
	for (const line of output.split("\n")) {
		if (!line.startsWith("{")) continue;
		try {
			const value: unknown = JSON.parse(line);
			if (value !== null && typeof value === "object" && !Array.isArray(value)) objects.push(value as Record<string, unknown>);
		} catch {
			// Not JSON: counted by the test below as a line that starts like an object but is not one.
		}
	}
	return objects;
}

/** Waits until every request ID has a JSON line, then a little longer for any stray second line. */
async function waitForLines(requestIds: string[]): Promise<string> {
	const deadline = Date.now() + 15_000;
	while (Date.now() < deadline) {
		const seen = new Set(jsonLines(server.output()).map((line) => line.request_id));
		if (requestIds.every((id) => seen.has(id))) break;
		await new Promise((done) => setTimeout(done, 50));
	}
	await new Promise((done) => setTimeout(done, 300));
	return server.output();
}

describe("npm start logs one JSON line per request", () => {
	it("prints each request's log object as one line of JSON carrying its request-id, and no API key", async () => {
		const answers = {
			ok: await get("/v1/models", DEMO_KEY),
			badKey: await get("/v1/models", BAD_KEY),
			notFound: await get("/v1/no-such-route", DEMO_KEY),
			tooLarge: await declareHugeBody(),
		};
		expect(answers.ok.status).toBe(200);
		expect(answers.badKey.status).toBe(401);
		expect(answers.notFound.status).toBe(404);
		expect(answers.tooLarge.status).toBe(413);
		const ids = Object.values(answers).map((answer) => answer.requestId);
		for (const id of ids) expect(id).toMatch(/^req_[0-9A-Za-z]{24}$/);
		expect(new Set(ids).size).toBe(ids.length);

		const output = await waitForLines(ids);
		const lines = jsonLines(output);
		for (const [name, answer] of Object.entries(answers)) {
			const mine = lines.filter((line) => line.request_id === answer.requestId);
			expect(mine, `${name}: one JSON line with request_id ${answer.requestId} in:\n${output}`).toHaveLength(1);
			expect(mine[0]?.status, name).toBe(answer.status);
			// The request ID appears on no other line: the object was not also printed in inspect form.
			expect(output.split(answer.requestId).length - 1, name).toBe(1);
		}
		expect(lines.find((line) => line.request_id === answers.ok.requestId)).toMatchObject({ method: "GET", path: "/v1/models", key_id: "key_demo_all" });
		expect(lines.find((line) => line.request_id === answers.tooLarge.requestId)).toMatchObject({ method: "POST", path: "/v1/messages" });

		// No object printed across several lines (inspect form starts with a lone "{").
		expect(output.split("\n").filter((line) => line.trim() === "{")).toEqual([]);
		expect(output).not.toContain(DEMO_KEY);
		expect(output).not.toContain(BAD_KEY);
	});
});
