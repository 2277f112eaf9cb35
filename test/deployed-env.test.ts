import { afterEach, describe, expect, it, vi } from "vitest";
import { analyticsPoint, type RequestLogLine } from "../src/log/request-log";
import { callGuardToSink, configProblem, MISCONFIGURED, sinkRecord } from "./helpers";
import { TEST_KEY } from "./keys";

afterEach(() => {
	vi.restoreAllMocks();
});

/** The log lines the guard wrote while `run` ran. */
async function logLines(run: () => Promise<unknown>): Promise<RequestLogLine[]> {
	const log = vi.spyOn(console, "log");
	await run();
	return log.mock.calls.map(([line]) => line).filter((line): line is RequestLogLine => typeof line?.request_id === "string");
}

describe("secrets", () => {
	it("refuses to serve a deployed environment whose required secret is missing, naming it", async () => {
		const { response, envelope: body, problem } = await configProblem("/v1/models", { REQUIRED_SECRETS: ["ORIGIN_TOKEN"] });
		expect(response.status).toBe(500);
		expect(body.error.type).toBe("api_error");
		expect(body.error.message).toBe(MISCONFIGURED);
		expect(problem).toContain("ORIGIN_TOKEN: this environment requires the secret, and it is not set");
		await expect(sinkRecord(body.request_id)).rejects.toThrow("no record");
	});

	it("refuses a REQUIRED_SECRETS entry the guard does not use", async () => {
		const { envelope, problem } = await configProblem("/v1/models", { REQUIRED_SECRETS: ["ORIGIN_TOKN"] });
		expect(envelope.error.message).toBe(MISCONFIGURED);
		expect(problem).toContain('REQUIRED_SECRETS: "ORIGIN_TOKN" is not a secret the guard uses');
	});

	it("sends ORIGIN_TOKEN to the origin in its header, replacing any copy the client sent, and never logs it", async () => {
		const secret = "origin-secret-value-1234567890";
		const lines = await logLines(async () => {
			const response = await callGuardToSink(
				"/v1/models",
				{ headers: { "x-origin-token": "forged-by-client" } },
				{ REQUIRED_SECRETS: ["ORIGIN_TOKEN"], ORIGIN_TOKEN: secret },
			);
			expect(response.status).toBe(200);
			const record = await sinkRecord(response.headers.get("request-id") ?? "");
			expect(record.headers["x-origin-token"]).toBe(secret);
			await response.text();
		});
		expect(JSON.stringify(lines)).not.toContain(secret);
	});

	it("strips a client's copy of the token header when no token is configured", async () => {
		const response = await callGuardToSink("/v1/models", { headers: { "x-origin-token": "forged-by-client" } });
		expect((await sinkRecord(response.headers.get("request-id") ?? "")).headers).not.toHaveProperty("x-origin-token");
	});
});

describe("one log line per request", () => {
	it("reports bytes in and out, time to the origin's headers and the total, once the body has been sent", async () => {
		const body = JSON.stringify({ model: "m", max_tokens: 10, messages: [{ role: "user", content: "hi" }] });
		let requestId = "";
		let sent = 0;
		const lines = await logLines(async () => {
			const response = await callGuardToSink("/v1/messages", { method: "POST", body, headers: { "content-type": "application/json" } });
			requestId = response.headers.get("request-id") ?? "";
			sent = (await response.arrayBuffer()).byteLength;
		});
		const mine = lines.filter((line) => line.request_id === requestId);
		expect(mine).toHaveLength(1);
		expect(mine[0]).toMatchObject({
			method: "POST",
			path: "/v1/messages",
			route: "messages.create",
			status: 200,
			error_type: null,
			org_id: "org_test",
			key_id: "key_test_all",
			bytes_in: body.length,
			bytes_out: sent,
		});
		expect(mine[0]?.origin_ms).toBeGreaterThanOrEqual(0);
		expect(mine[0]?.duration_ms).toBeGreaterThanOrEqual(mine[0]?.origin_ms ?? 0);
		expect(JSON.stringify(mine)).not.toContain(TEST_KEY);
	});

	it("says in a 413's line which cap fired, with the numbers", async () => {
		const lines = await logLines(() =>
			callGuardToSink("/v1/messages", { method: "POST", body: "{}", headers: { "content-type": "application/json", "content-length": "40000000" } }).catch(() => undefined),
		);
		expect(lines.at(-1)).toMatchObject({
			status: 413,
			error_type: "request_too_large",
			decisions: { cap: { cap: 33554432, declared: 40000000, outcome: "declared-over-cap", bytes_read: 0 } },
		});
	});

	it("writes one Analytics Engine data point per request when the dataset is bound", async () => {
		const points: AnalyticsEngineDataPoint[] = [];
		const ANALYTICS = { writeDataPoint: (point: AnalyticsEngineDataPoint) => points.push(point) } as AnalyticsEngineDataset;
		const response = await callGuardToSink("/v1/models", {}, { ANALYTICS });
		await response.text();
		expect(points).toHaveLength(1);
		expect(points[0]).toEqual({
			indexes: ["org_test"],
			blobs: ["models.list", "GET", "2xx", "", "org_test", "key_test_all", "service:ORIGIN"],
			doubles: [200, 0, expect.any(Number), expect.any(Number), expect.any(Number)],
		});
	});

	it("shapes a data point from a log line: strings as blobs, numbers as doubles, unknowns as -1", () => {
		const line: RequestLogLine = {
			request_id: "req_x",
			method: "POST",
			path: "/v1/files",
			route: "files.upload",
			origin: "https://api.example.com",
			org_id: null,
			key_id: null,
			status: 413,
			error_type: "request_too_large",
			bytes_in: 524288001,
			bytes_out: null,
			origin_ms: null,
			duration_ms: 12,
			decisions: {},
		};
		expect(analyticsPoint(line)).toEqual({
			indexes: ["files.upload"],
			blobs: ["files.upload", "POST", "4xx", "request_too_large", "", "", "https://api.example.com"],
			doubles: [413, 524288001, -1, -1, 12],
		});
	});
});
