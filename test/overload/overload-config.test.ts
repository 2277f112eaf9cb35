import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config/config-error";
import { OVERLOAD_DEFAULTS, parseOverloadConfig } from "../../src/overload/overload-config";

function problem(raw: unknown, field?: string): ConfigError {
	try {
		parseOverloadConfig(raw, field);
	} catch (error) {
		expect(error).toBeInstanceOf(ConfigError);
		return error as ConfigError;
	}
	throw new Error("the configuration was accepted");
}

describe("overload config: defaults", () => {
	it("gives every default when [vars.OVERLOAD] is absent", () => {
		const config = parseOverloadConfig(undefined);
		expect(config).toEqual({
			maxInFlight: 100,
			orgShare: 0.5,
			retryAfterSeconds: 1,
			groups: new Map(),
			breaker: { failures: 5, minRequests: 20, failureRate: 0.5, windowMs: 10_000, cooldownMs: 5_000, probes: 2 },
		});
		expect(config).toBe(OVERLOAD_DEFAULTS);
	});

	it("treats an empty string (an unset variable) as absent", () => {
		expect(parseOverloadConfig("")).toBe(OVERLOAD_DEFAULTS);
	});

	it("fills every key left out of a partial table from the defaults", () => {
		const config = parseOverloadConfig({ max_in_flight: 40, breaker: { failures: 3 } });
		expect(config.maxInFlight).toBe(40);
		expect(config.orgShare).toBe(0.5);
		expect(config.retryAfterSeconds).toBe(1);
		expect(config.groups.size).toBe(0);
		expect(config.breaker).toEqual({ failures: 3, minRequests: 20, failureRate: 0.5, windowMs: 10_000, cooldownMs: 5_000, probes: 2 });
	});
});

describe("overload config: a full table", () => {
	const full = {
		max_in_flight: 80,
		org_share: 0.25,
		retry_after_seconds: 3,
		groups: { messages: 60, files: 20 },
		breaker: { failures: 7, min_requests: 40, failure_rate: 0.25, window_seconds: 30, cooldown_seconds: 15, probes: 4 },
	};

	it("reads every key, with seconds turned into ms", () => {
		const config = parseOverloadConfig(full);
		expect(config.maxInFlight).toBe(80);
		expect(config.orgShare).toBe(0.25);
		expect(config.retryAfterSeconds).toBe(3);
		expect([...config.groups]).toEqual([
			["messages", 60],
			["files", 20],
		]);
		expect(config.breaker).toEqual({ failures: 7, minRequests: 40, failureRate: 0.25, windowMs: 30_000, cooldownMs: 15_000, probes: 4 });
	});

	it("accepts the same table as a JSON string", () => {
		expect(parseOverloadConfig(JSON.stringify(full))).toEqual(parseOverloadConfig(full));
	});

	it("accepts the bounds themselves: a share of exactly 1, caps of 1", () => {
		const config = parseOverloadConfig({ org_share: 1, max_in_flight: 1, groups: { files: 1 }, breaker: { failures: 1, probes: 1 } });
		expect(config.orgShare).toBe(1);
		expect(config.groups.get("files")).toBe(1);
		expect(config.breaker.failures).toBe(1);
	});

	it("accepts an empty groups table", () => {
		expect(parseOverloadConfig({ groups: {} }).groups.size).toBe(0);
	});
});

describe("overload config: every error names its field", () => {
	it.each([
		[42, "OVERLOAD", "must be a table with max_in_flight"],
		[[], "OVERLOAD", "must be a table"],
		[null, "OVERLOAD", "must be a table"],
		["{", "OVERLOAD", "is a string but not valid JSON"],
		[{ max_inflight: 10 }, "OVERLOAD.max_inflight", "unknown field; expected one of max_in_flight"],
		[{ max_in_flight: 0 }, "OVERLOAD.max_in_flight", "must be a whole number from 1 to 1000000, got 0"],
		[{ max_in_flight: 2.5 }, "OVERLOAD.max_in_flight", "must be a whole number"],
		[{ max_in_flight: "100" }, "OVERLOAD.max_in_flight", 'must be a whole number from 1 to 1000000, got "100"'],
		[{ max_in_flight: 1e9 }, "OVERLOAD.max_in_flight", "must be a whole number from 1 to 1000000"],
		[{ org_share: 0 }, "OVERLOAD.org_share", "must be a fraction above 0 and at most 1"],
		[{ org_share: 1.01 }, "OVERLOAD.org_share", "must be a fraction above 0 and at most 1"],
		[{ org_share: "half" }, "OVERLOAD.org_share", 'must be a fraction above 0 and at most 1 (such as 0.5), got "half"'],
		[{ retry_after_seconds: 0 }, "OVERLOAD.retry_after_seconds", "must be a whole number from 1 to 3600"],
		[{ retry_after_seconds: 0.5 }, "OVERLOAD.retry_after_seconds", "must be a whole number"],
		[{ groups: [60] }, "OVERLOAD.groups", "must be a table of group = cap"],
		[{ groups: 60 }, "OVERLOAD.groups", "must be a table of group = cap"],
		[{ groups: { messages: 60, files: 0 } }, "OVERLOAD.groups.files", "must be a whole number from 1 to 1000000, got 0"],
		[{ groups: { files: "20" } }, "OVERLOAD.groups.files", "must be a whole number"],
		[{ groups: { Files: 20 } }, "OVERLOAD.groups.Files", "is not a route group name"],
		[{ breaker: true }, "OVERLOAD.breaker", "must be a table with failures, min_requests, failure_rate, window_seconds, cooldown_seconds, probes"],
		[{ breaker: { cooldown: 5 } }, "OVERLOAD.breaker.cooldown", "unknown field; expected one of failures"],
		[{ breaker: { failures: 0 } }, "OVERLOAD.breaker.failures", "must be a whole number from 1 to 1000, got 0"],
		[{ breaker: { failures: 5000 } }, "OVERLOAD.breaker.failures", "must be a whole number from 1 to 1000"],
		[{ breaker: { window_seconds: 0 } }, "OVERLOAD.breaker.window_seconds", "must be a whole number from 1 to 3600"],
		[{ breaker: { window_seconds: 1.5 } }, "OVERLOAD.breaker.window_seconds", "must be a whole number"],
		[{ breaker: { cooldown_seconds: -5 } }, "OVERLOAD.breaker.cooldown_seconds", "must be a whole number from 1 to 3600"],
		[{ breaker: { cooldown_seconds: 86_400 } }, "OVERLOAD.breaker.cooldown_seconds", "must be a whole number from 1 to 3600"],
		[{ breaker: { probes: 0 } }, "OVERLOAD.breaker.probes", "must be a whole number from 1 to 100"],
	])("rejects %j at %s", (raw, field, message) => {
		const error = problem(raw);
		expect(error.field).toBe(field);
		expect(error.message).toContain(`${field}: ${message}`);
	});

	it("names fields under the prefix it is given", () => {
		const error = problem({ breaker: { probes: 0 } }, "vars.OVERLOAD");
		expect(error.field).toBe("vars.OVERLOAD.breaker.probes");
	});

	it("reports the first bad field, never a partial config", () => {
		const error = problem({ max_in_flight: 0, org_share: 2 });
		expect(error.field).toBe("OVERLOAD.max_in_flight");
	});
});
