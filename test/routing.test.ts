import { describe, expect, it } from "vitest";
import { REQUEST_ID_PATTERN } from "../src/request-id/request-id";
import { callGuard, callGuardToSink, readEnvelope, sinkRecord } from "./helpers";

describe("routing", () => {
	it("answers 404 not_found_error for an unknown path, before any origin", async () => {
		const response = await callGuardToSink("/v2/unknown", { method: "POST", body: "x" });
		expect(response.status).toBe(404);
		const body = await readEnvelope(response);
		expect(body).toEqual({
			type: "error",
			error: { type: "not_found_error", message: "The requested resource could not be found." },
			request_id: response.headers.get("request-id"),
		});
		expect(body.request_id).toMatch(REQUEST_ID_PATTERN);
		expect(response.headers.get("x-should-retry")).toBe("false");
		await expect(sinkRecord(body.request_id)).rejects.toThrow("no record");
	});

	it.each([
		["DELETE", "/v1/messages", "POST"],
		["POST", "/v1/models", "GET, HEAD"],
		["PUT", "/v1/messages/batches", "POST, GET, HEAD"],
		["POST", "/v1/files/file_123", "GET, DELETE, HEAD"],
		["GET", "/v1/messages/batches/msgbatch_1/cancel", "POST"],
	])("answers %s %s with 405 invalid_request_error and allow: %s", async (method, path, allow) => {
		const response = await callGuardToSink(path, { method });
		expect(response.status).toBe(405);
		expect(response.headers.get("allow")).toBe(allow);
		const body = await readEnvelope(response);
		expect(body.error.type).toBe("invalid_request_error");
		expect(body.error.message).toContain(`allowed: ${allow}`);
		expect(body.request_id).toBe(response.headers.get("request-id"));
		expect(response.headers.get("x-should-retry")).toBe("false");
	});

	it("routes :id segments and passes the query string through unchanged", async () => {
		const response = await callGuardToSink("/v1/messages/batches/msgbatch_01AbC/results?beta=true&x=%20y");
		expect(response.status).toBe(200);
		const seen = (await response.json()) as { url: string; method: string };
		expect(seen.method).toBe("GET");
		expect(new URL(seen.url).pathname + new URL(seen.url).search).toBe("/v1/messages/batches/msgbatch_01AbC/results?beta=true&x=%20y");
	});

	it("does not route a path with an extra segment", async () => {
		const response = await callGuardToSink("/v1/models/claude/extra");
		expect(response.status).toBe(404);
	});
});

describe("request-id on every response", () => {
	it("is on a proxied success and equals what the origin received", async () => {
		const response = await callGuardToSink("/v1/models");
		const id = response.headers.get("request-id") ?? "";
		expect(id).toMatch(REQUEST_ID_PATTERN);
		expect(((await response.json()) as { headers: Record<string, string> }).headers["request-id"]).toBe(id);
	});

	it("is new for every request", async () => {
		const ids = new Set<string>();
		for (let i = 0; i < 20; i++) ids.add((await callGuard("/nope")).headers.get("request-id") ?? "");
		expect(ids.size).toBe(20);
	});

	it("never trusts or echoes a client's own request-id", async () => {
		const response = await callGuardToSink("/v1/models", { headers: { "request-id": "req_AAAAAAAAAAAAAAAAAAAAAAAA" } });
		const id = response.headers.get("request-id");
		expect(id).not.toBe("req_AAAAAAAAAAAAAAAAAAAAAAAA");
		const seen = (await response.json()) as { headers: Record<string, string> };
		expect(seen.headers["request-id"]).toBe(id);
		const notFound = await callGuard("/nope", { headers: { "request-id": "req_AAAAAAAAAAAAAAAAAAAAAAAA" } });
		expect(notFound.headers.get("request-id")).not.toBe("req_AAAAAAAAAAAAAAAAAAAAAAAA");
	});

	it("is on a proxied origin error, which keeps the origin's own ID apart", async () => {
		const response = await callGuardToSink("/v1/models", { headers: { "x-sink-status": "418", "x-sink-body": "teapot" } });
		expect(response.status).toBe(418);
		expect(response.headers.get("request-id")).toMatch(REQUEST_ID_PATTERN);
		expect(response.headers.get("x-origin-request-id")).toBe("req_origin_own_id");
		expect((await readEnvelope(response)).request_id).toBe(response.headers.get("request-id"));
	});
});

describe("HEAD", () => {
	it("answers HEAD on every GET route as GET would, without a body", async () => {
		for (const path of ["/v1/models", "/v1/models/claude-x", "/v1/files", "/v1/messages/batches"]) {
			const get = await callGuardToSink(path);
			const head = await callGuardToSink(path, { method: "HEAD" });
			expect([path, head.status]).toEqual([path, get.status]);
			expect(head.headers.get("content-type")).toBe(get.headers.get("content-type"));
			expect(head.headers.get("request-id")).toMatch(/^req_/);
			expect(await head.text()).toBe("");
			// The origin was asked with GET: RFC 9110 §9.3.2 lets a HEAD answer be a GET's headers.
			expect((await sinkRecord(head.headers.get("request-id") ?? "")).method).toBe("GET");
		}
	});
});
