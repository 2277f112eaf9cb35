import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config/config-error";
import { parseTierConfig, type RawTierConfig, resolveLimits } from "../../src/limits/tiers";

const DEFAULT = { requests_per_minute: 4000, input_tokens_per_minute: 400_000, output_tokens_per_minute: 80_000 };

function fails(raw: RawTierConfig): ConfigError {
	try {
		parseTierConfig(raw);
	} catch (error) {
		if (error instanceof ConfigError) return error;
		throw error;
	}
	throw new Error("expected a ConfigError");
}

describe("tiers", () => {
	it("resolves an organisation's tier, the default for others, and a workspace's own limits", () => {
		const table = parseTierConfig({
			TIERS: {
				default: { ...DEFAULT, acceleration: { window_seconds: 60, multiple: 4, floor_per_minute: 600, baseline_minutes: 30 } },
				tight: { requests_per_minute: 10, input_tokens_per_minute: 20_000, output_tokens_per_minute: 4000 },
			},
			ORG_TIERS: { org_tight: "tight" },
			WORKSPACE_LIMITS: { wrk_small: { requests_per_minute: 5 } },
		});
		expect(resolveLimits(table, "org_other")).toEqual({
			tier: "default",
			organization: { requestsPerMinute: 4000, inputTokensPerMinute: 400_000, outputTokensPerMinute: 80_000 },
			workspace: undefined,
			acceleration: { windowMs: 60_000, multiple: 4, floorPerMinute: 600, baselineMs: 1_800_000 },
		});
		expect(resolveLimits(table, "org_tight", "wrk_small")).toMatchObject({
			tier: "tight",
			organization: { requestsPerMinute: 10 },
			workspace: { id: "wrk_small", limits: { requestsPerMinute: 5 } },
			acceleration: undefined,
		});
		expect(resolveLimits(table, "org_tight", "wrk_unlisted").workspace).toBeUndefined();
	});

	it("accepts the tables as JSON strings", () => {
		const table = parseTierConfig({ TIERS: JSON.stringify({ default: DEFAULT }), ORG_TIERS: JSON.stringify({ org_a: "default" }) });
		expect(resolveLimits(table, "org_a").organization.requestsPerMinute).toBe(4000);
	});

	it("parses the tiers in the Worker's configuration", () => {
		const table = parseTierConfig(env);
		expect(resolveLimits(table, "org_tight").organization.requestsPerMinute).toBe(10);
		expect(resolveLimits(table, "org_demo").organization.requestsPerMinute).toBeGreaterThanOrEqual(1000);
	});
});

describe("tiers: configuration errors name the field", () => {
	it.each<[string, RawTierConfig, string]>([
		["a missing table", {}, "TIERS: is missing; add [vars.TIERS.default] to wrangler.toml"],
		["no default tier", { TIERS: { gold: DEFAULT } }, "TIERS.default: is required"],
		["a misspelt limit", { TIERS: { default: { ...DEFAULT, request_per_minute: 5 } } }, "TIERS.default.request_per_minute: unknown field"],
		["a missing limit", { TIERS: { default: { ...DEFAULT, output_tokens_per_minute: undefined } } }, "TIERS.default.output_tokens_per_minute: must be a whole number from 1"],
		["a limit as a string", { TIERS: { default: { ...DEFAULT, requests_per_minute: "10" } } }, 'TIERS.default.requests_per_minute: must be a whole number from 1 to 10000000000, got "10"'],
		["a fractional limit", { TIERS: { default: { ...DEFAULT, requests_per_minute: 1.5 } } }, "TIERS.default.requests_per_minute: must be a whole number"],
		["a zero limit", { TIERS: { default: { ...DEFAULT, input_tokens_per_minute: 0 } } }, "TIERS.default.input_tokens_per_minute: must be a whole number from 1"],
		["a limit too large to count exactly", { TIERS: { default: { ...DEFAULT, requests_per_minute: 1e11 } } }, "TIERS.default.requests_per_minute"],
		[
			"a multiple of 1",
			{ TIERS: { default: { ...DEFAULT, acceleration: { window_seconds: 60, multiple: 1, floor_per_minute: 10, baseline_minutes: 30 } } } },
			"TIERS.default.acceleration.multiple: must be a number above 1",
		],
		[
			"a floor under one request per window",
			{ TIERS: { default: { ...DEFAULT, acceleration: { window_seconds: 10, multiple: 2, floor_per_minute: 5, baseline_minutes: 30 } } } },
			"TIERS.default.acceleration.floor_per_minute: must be a number from 6",
		],
		[
			"a baseline no longer than the window",
			{ TIERS: { default: { ...DEFAULT, acceleration: { window_seconds: 120, multiple: 2, floor_per_minute: 5, baseline_minutes: 2 } } } },
			"TIERS.default.acceleration.baseline_minutes: must be a number above 2",
		],
		[
			"an unknown acceleration field",
			{ TIERS: { default: { ...DEFAULT, acceleration: { window: 60 } } } },
			"TIERS.default.acceleration.window: unknown field; expected one of window_seconds, multiple, floor_per_minute, baseline_minutes",
		],
		["a tier that is not a table", { TIERS: { default: 5 } }, "TIERS.default: must be a table"],
		["an organisation in an unknown tier", { TIERS: { default: DEFAULT }, ORG_TIERS: { org_a: "gold" } }, 'ORG_TIERS.org_a: must name a tier in TIERS (default), got "gold"'],
		["a workspace with no limits", { TIERS: { default: DEFAULT }, WORKSPACE_LIMITS: { wrk_a: {} } }, "WORKSPACE_LIMITS.wrk_a: must set at least one of"],
		["a workspace limit misspelt", { TIERS: { default: DEFAULT }, WORKSPACE_LIMITS: { wrk_a: { rpm: 5 } } }, "WORKSPACE_LIMITS.wrk_a.rpm: unknown field"],
		["a JSON string that is not JSON", { TIERS: "{default" }, "TIERS: is a string but not valid JSON"],
	])("rejects %s", (_name, raw, message) => {
		const error = fails(raw);
		expect(error.message.startsWith(message)).toBe(true);
		expect(error.message.startsWith(`${error.field}: `)).toBe(true);
	});
});
