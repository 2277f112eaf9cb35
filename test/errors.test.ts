import { describe, expect, it } from "vitest";
import { errorResponse } from "../src/errors/error-response";
import { errorTypeForStatus, shouldRetry } from "../src/errors/error-types";

describe("the error envelope", () => {
	it.each([
		[400, "invalid_request_error", "false"],
		[401, "authentication_error", "false"],
		[403, "permission_error", "false"],
		[404, "not_found_error", "false"],
		[405, "invalid_request_error", "false"],
		[413, "request_too_large", "false"],
		[422, "invalid_request_error", "false"],
		[429, "rate_limit_error", "true"],
		[500, "api_error", "true"],
		[502, "api_error", "true"],
		[504, "api_error", "true"],
		[529, "overloaded_error", "true"],
	])("gives %i the type %s and x-should-retry: %s", async (status, type, retry) => {
		expect(errorTypeForStatus(status)).toBe(type);
		const response = errorResponse({ status, type: errorTypeForStatus(status), message: "m", requestId: "req_x" });
		expect(response.status).toBe(status);
		expect(response.headers.get("content-type")).toBe("application/json");
		expect(response.headers.get("request-id")).toBe("req_x");
		expect(response.headers.get("x-should-retry")).toBe(retry);
		expect(shouldRetry(status)).toBe(retry === "true");
		// Exactly the SPEC's shape: no other keys, in this order.
		expect(await response.text()).toBe(`{"type":"error","error":{"type":"${type}","message":"m"},"request_id":"req_x"}`);
	});

	it("keeps extra headers but never lets them replace request-id or content-type", () => {
		const response = errorResponse({
			status: 429,
			type: "rate_limit_error",
			message: "m",
			requestId: "req_mine",
			headers: { "retry-after": "3", "request-id": "req_other", "content-type": "text/html" },
		});
		expect(response.headers.get("retry-after")).toBe("3");
		expect(response.headers.get("request-id")).toBe("req_mine");
		expect(response.headers.get("content-type")).toBe("application/json");
	});
});
