import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config/config-error";
import { familyFor, parseTierConfig, type RawTierConfig, resolveLimits } from "../../src/limits/rates/tiers";

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

	it("resolves a family's pool, the budgets of the organisation, a workspace and its keys", () => {
		const table = parseTierConfig({
			TIERS: {
				default: {
					...DEFAULT,
					price: { input: 1, output: 2, cache_write: 1.25, cache_read: 0.1 },
					budgets: { organization: { day: 10, month: 100 }, workspace: { day: 5 }, key: { month: 2.5 } },
					families: {
						opus: { models: ["claude-opus-*"], requests_per_minute: 5, input_tokens_per_minute: 500, output_tokens_per_minute: 50 },
						cheap: { models: ["claude-haiku-*"], price: { input: 0.8, output: 4, cache_write: 1, cache_read: 0.08 } },
					},
				},
			},
			WORKSPACE_LIMITS: { wrk_rich: { budget: { day: 50 } } },
		});
		expect(resolveLimits(table, "org_a", "wrk_other", "opus")).toMatchObject({
			organization: { requestsPerMinute: 4000 },
			pool: { family: "opus", limits: { requestsPerMinute: 5, inputTokensPerMinute: 500, outputTokensPerMinute: 50 } },
			budgets: { organization: { day: 10e9, month: 100e9 }, workspace: { day: 5e9 }, key: { month: 2.5e9 } },
		});
		// A family without limits of its own shares the organisation's pool.
		expect(resolveLimits(table, "org_a", undefined, "cheap").pool).toBeUndefined();
		expect(resolveLimits(table, "org_a", "wrk_rich")).toMatchObject({ workspace: { id: "wrk_rich", limits: {} }, budgets: { workspace: { day: 50e9 } } });
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
		["a family without models", { TIERS: { default: { ...DEFAULT, families: { opus: { requests_per_minute: 5 } } } } }, "TIERS.default.families.opus.models: must be a non-empty array"],
		["a model pattern with a space", { TIERS: { default: { ...DEFAULT, families: { opus: { models: ["claude opus"] } } } } }, "TIERS.default.families.opus.models[0]: must be a model id"],
		[
			"a pattern in two families",
			{ TIERS: { default: { ...DEFAULT, families: { a: { models: ["claude-*"] }, b: { models: ["claude-x", "claude-*"] } } } } },
			'TIERS.default.families.b.models[1]: "claude-*" is already in family a',
		],
		[
			"a family with some of its limits",
			{ TIERS: { default: { ...DEFAULT, families: { opus: { models: ["claude-opus-*"], requests_per_minute: 5 } } } } },
			"TIERS.default.families.opus.input_tokens_per_minute: is required with requests_per_minute",
		],
		[
			"a family limit of zero",
			{ TIERS: { default: { ...DEFAULT, families: { opus: { models: ["m"], requests_per_minute: 0, input_tokens_per_minute: 1, output_tokens_per_minute: 1 } } } } },
			"TIERS.default.families.opus.requests_per_minute: must be a whole number from 1",
		],
		["a misspelt family field", { TIERS: { default: { ...DEFAULT, families: { opus: { models: ["m"], rpm: 5 } } } } }, "TIERS.default.families.opus.rpm: unknown field"],
		["a price with a missing kind", { TIERS: { default: { ...DEFAULT, price: { input: 3, output: 15, cache_write: 3.75 } } } }, "TIERS.default.price.cache_read: must be a number from 0"],
		["a negative price", { TIERS: { default: { ...DEFAULT, price: { input: -1, output: 15, cache_write: 3.75, cache_read: 0.3 } } } }, "TIERS.default.price.input: must be a number from 0"],
		[
			"a price finer than a thousandth of a dollar per million",
			{ TIERS: { default: { ...DEFAULT, price: { input: 3.0001, output: 15, cache_write: 3.75, cache_read: 0.3 } } } },
			"TIERS.default.price.input: must have at most three decimals",
		],
		["budgets without a price", { TIERS: { default: { ...DEFAULT, budgets: { organization: { day: 5 } } } } }, "TIERS.default.price: is required when the tier has budgets"],
		["a batch factor of 0", { TIERS: { default: { ...DEFAULT, price: { input: 3, output: 15, cache_write: 3.75, cache_read: 0.3, batch_factor: 0 } } } }, "TIERS.default.price.batch_factor: must be a number"],
		["a batch factor over 1", { TIERS: { default: { ...DEFAULT, price: { input: 3, output: 15, cache_write: 3.75, cache_read: 0.3, batch_factor: 1.5 } } } }, "TIERS.default.price.batch_factor: must be a number"],
		[
			"a budget of nothing",
			{ TIERS: { default: { ...DEFAULT, price: { input: 1, output: 1, cache_write: 1, cache_read: 1 }, budgets: { key: { day: 0 } } } } },
			"TIERS.default.budgets.key.day: must be a number above 0",
		],
		[
			"a budget over an unknown period",
			{ TIERS: { default: { ...DEFAULT, price: { input: 1, output: 1, cache_write: 1, cache_read: 1 }, budgets: { organization: { week: 5 } } } } },
			"TIERS.default.budgets.organization.week: unknown field; expected one of day, month",
		],
		[
			"a budget for an unknown scope",
			{ TIERS: { default: { ...DEFAULT, price: { input: 1, output: 1, cache_write: 1, cache_read: 1 }, budgets: { team: { day: 5 } } } } },
			"TIERS.default.budgets.team: unknown field; expected one of organization, workspace, key",
		],
		["count_cache_reads as a string", { TIERS: { default: { ...DEFAULT, count_cache_reads: "yes" } } }, 'TIERS.default.count_cache_reads: must be true or false, got "yes"'],
		["a workspace budget with no period", { TIERS: { default: DEFAULT }, WORKSPACE_LIMITS: { wrk_a: { budget: {} } } }, "WORKSPACE_LIMITS.wrk_a.budget: must set day, month or both"],
	])("rejects %s", (_name, raw, message) => {
		const error = fails(raw);
		expect(error.message.startsWith(message)).toBe(true);
		expect(error.message.startsWith(`${error.field}: `)).toBe(true);
	});
});

describe("model families: which family a model is in", () => {
	// Parsed in each test, not while collecting: Stryker counts an error thrown outside a test as no failure.
	const families = () => parseTierConfig({
		TIERS: {
			default: {
				...DEFAULT,
				count_cache_reads: true,
				families: {
					opus: { models: ["claude-opus-*", "claude-3-opus-20240229"], requests_per_minute: 6, input_tokens_per_minute: 600, output_tokens_per_minute: 60 },
					dotted: { models: ["model.v1*"], count_cache_reads: false },
					"any_rest-1": { models: ["*-preview"], price: { input: 1, output: 2, cache_write: 1.25, cache_read: 0.1 } },
				},
			},
		},
	});
	const family = (model: string | undefined) => familyFor(families(), "org_a", model)?.name;

	it("matches a whole model id, with * standing for any run of characters, the empty one included", () => {
		expect([family("claude-opus-4-1"), family("claude-opus-"), family("claude-3-opus-20240229")]).toEqual(["opus", "opus", "opus"]);
		expect([family("claude-opus"), family("xclaude-opus-4"), family("claude-3-opus-20240229x"), family(undefined)]).toEqual([undefined, undefined, undefined, undefined]);
	});

	it("reads every other character of a pattern literally, a dot included", () => {
		expect([family("model.v1"), family("model.v12"), family("modelxv1"), family("model.v")]).toEqual(["dotted", "dotted", undefined, undefined]);
	});

	it("puts no model in a family when the model is not known, even where a pattern matches anything", () => {
		const table = parseTierConfig({ TIERS: { default: { ...DEFAULT, families: { all: { models: ["*"] } } } } });
		expect(familyFor(table, "org_a", "anything")?.name).toBe("all");
		expect(familyFor(table, "org_a", undefined)).toBeUndefined();
	});

	it("puts a model two patterns match in the first family written", () => {
		expect(family("claude-opus-preview")).toBe("opus");
		expect(family("claude-sonnet-preview")).toBe("any_rest-1");
	});

	it("gives a family its own pool, price and cache-read rule, or the tier's", () => {
		const table = families();
		expect(familyFor(table, "org_a", "claude-opus-4")).toMatchObject({ limits: { requestsPerMinute: 6, inputTokensPerMinute: 600, outputTokensPerMinute: 60 }, price: undefined, countCacheReads: true });
		expect(familyFor(table, "org_a", "model.v1")).toMatchObject({ limits: undefined, countCacheReads: false });
		expect(familyFor(table, "org_a", "x-preview")?.price).toEqual({ input: 1000, output: 2000, cacheWrite: 1250, cacheRead: 100, batchFactor: 0.5 });
		expect(table.tiers.get("default")?.pooled).toBe(true);
		expect(parseTierConfig({ TIERS: { default: { ...DEFAULT, families: { cheap: { models: ["m"] } } } } }).tiers.get("default")?.pooled).toBe(false);
	});

	it.each([
		["a name with a space", { "opus 4": { models: ["m"] } }, "TIERS.default.families.opus 4: a family name is letters, digits, _ and -"],
		["a name of 65 characters", { [`a${"b".repeat(64)}`]: { models: ["m"] } }, "a family name is letters, digits, _ and - (at most 64)"],
		["a pattern of 129 characters", { opus: { models: ["m".repeat(129)] } }, "TIERS.default.families.opus.models[0]: must be a model id"],
		["a pattern that is not a string", { opus: { models: [5] } }, "TIERS.default.families.opus.models[0]: must be a model id"],
		["models that are not an array", { opus: { models: "claude-opus-*" } }, 'TIERS.default.families.opus.models: must be a non-empty array of model-id patterns such as ["claude-opus-*"], got "claude-opus-*"'],
		["an empty list of models", { opus: { models: [] } }, "TIERS.default.families.opus.models: must be a non-empty array of model-id patterns"],
		["a family's input limit of zero", { opus: { models: ["m"], requests_per_minute: 1, input_tokens_per_minute: 0, output_tokens_per_minute: 1 } }, "TIERS.default.families.opus.input_tokens_per_minute: must be a whole number from 1"],
		["a family's output limit of zero", { opus: { models: ["m"], requests_per_minute: 1, input_tokens_per_minute: 1, output_tokens_per_minute: 0 } }, "TIERS.default.families.opus.output_tokens_per_minute: must be a whole number from 1"],
		["a family's price with a negative kind", { opus: { models: ["m"], price: { input: -1, output: 1, cache_write: 1, cache_read: 1 } } }, "TIERS.default.families.opus.price.input: must be a number from 0"],
		["a family's count_cache_reads as a string", { opus: { models: ["m"], count_cache_reads: "no" } }, 'TIERS.default.families.opus.count_cache_reads: must be true or false, got "no"'],
		["a family with two of its limits", { opus: { models: ["m"], requests_per_minute: 5, output_tokens_per_minute: 5 } }, "TIERS.default.families.opus.input_tokens_per_minute: is required with requests_per_minute, output_tokens_per_minute"],
	])("refuses %s", (_name, families, message) => {
		expect(fails({ TIERS: { default: { ...DEFAULT, families } } }).message).toContain(message);
	});

	it("accepts a name of 64 characters and a pattern of 128", () => {
		const name = `a${"b".repeat(63)}`;
		const table = parseTierConfig({ TIERS: { default: { ...DEFAULT, families: { [name]: { models: ["m".repeat(128)] } } } } });
		expect(familyFor(table, "org_a", "m".repeat(128))?.name).toBe(name);
	});
});

describe("tiers: the tables around them", () => {
	it.each<[string, RawTierConfig, string]>([
		["ORG_TIERS that is not a table", { TIERS: { default: DEFAULT }, ORG_TIERS: [] }, "ORG_TIERS: must be a table, got an array"],
		["ORG_TIERS as JSON that is not JSON", { TIERS: { default: DEFAULT }, ORG_TIERS: "{" }, "ORG_TIERS: is a string but not valid JSON"],
		["WORKSPACE_LIMITS that is not a table", { TIERS: { default: DEFAULT }, WORKSPACE_LIMITS: 5 }, "WORKSPACE_LIMITS: must be a table, got 5"],
		["an organisation's tier that is not a name", { TIERS: { default: DEFAULT, gold: DEFAULT }, ORG_TIERS: { org_a: 5 } }, "ORG_TIERS.org_a: must name a tier in TIERS (default, gold), got 5"],
	])("rejects %s, naming it", (_name, raw, message) => {
		expect(fails(raw).message.startsWith(message)).toBe(true);
	});

	it("gives a workspace its own budget over its tier's, and the tier's to any other workspace", () => {
		const table = parseTierConfig({
			TIERS: { default: { ...DEFAULT, price: { input: 1, output: 1, cache_write: 1, cache_read: 1 }, budgets: { workspace: { day: 5 } } } },
			WORKSPACE_LIMITS: { wrk_rich: { budget: { month: 50 } }, wrk_slow: { requests_per_minute: 5 } },
		});
		expect(resolveLimits(table, "org_a", "wrk_rich").budgets).toEqual({ organization: undefined, workspace: { month: 50e9 }, key: undefined });
		expect(resolveLimits(table, "org_a", "wrk_slow").budgets).toEqual({ organization: undefined, workspace: { day: 5e9 }, key: undefined });
		expect(resolveLimits(table, "org_a").budgets).toEqual({ organization: undefined, workspace: undefined, key: undefined });
		expect(table.workspaceBudgets.has("wrk_slow")).toBe(false);
	});

	it("gives no budgets to a tier without them, unless the workspace has its own", () => {
		const table = parseTierConfig({ TIERS: { default: DEFAULT }, WORKSPACE_LIMITS: { wrk_rich: { budget: { day: 1 } } } });
		expect(resolveLimits(table, "org_a", "wrk_other").budgets).toBeUndefined();
		expect(resolveLimits(table, "org_a").budgets).toBeUndefined();
		expect(resolveLimits(table, "org_a", "wrk_rich").budgets).toEqual({ organization: undefined, workspace: { day: 1e9 }, key: undefined });
	});

	it("charges a family's own pool only for that family, and the organisation's for any other", () => {
		const table = parseTierConfig({
			TIERS: { default: { ...DEFAULT, families: { opus: { models: ["claude-opus-*"], requests_per_minute: 5, input_tokens_per_minute: 50, output_tokens_per_minute: 5 } } } },
		});
		expect(resolveLimits(table, "org_a", undefined, "opus").pool).toEqual({ family: "opus", limits: { requestsPerMinute: 5, inputTokensPerMinute: 50, outputTokensPerMinute: 5 } });
		expect(resolveLimits(table, "org_a", undefined, "haiku").pool).toBeUndefined();
		expect(resolveLimits(table, "org_a").pool).toBeUndefined();
	});
});

describe("tiers: defaults and the fields of acceleration and workspaces", () => {
	it("puts no model in a family when the tier has none, and counts no cache reads unless the tier says so", () => {
		expect(familyFor(parseTierConfig({ TIERS: { default: DEFAULT } }), "org_a", "claude-opus-4")).toBeUndefined();
		const plain = parseTierConfig({ TIERS: { default: { ...DEFAULT, families: { opus: { models: ["claude-opus-*"] } } } } });
		expect(familyFor(plain, "org_a", "claude-opus-4")?.countCacheReads).toBe(false);
	});

	it.each<[string, RawTierConfig, string]>([
		[
			"a window of a second and a half",
			{ TIERS: { default: { ...DEFAULT, acceleration: { window_seconds: 1.5, multiple: 2, floor_per_minute: 60, baseline_minutes: 30 } } } },
			"TIERS.default.acceleration.window_seconds: must be a whole number",
		],
		["a workspace limit of zero", { TIERS: { default: DEFAULT }, WORKSPACE_LIMITS: { wrk_a: { output_tokens_per_minute: 0 } } }, "WORKSPACE_LIMITS.wrk_a.output_tokens_per_minute: must be a whole number from 1"],
		[
			"a workspace with nothing set",
			{ TIERS: { default: DEFAULT }, WORKSPACE_LIMITS: { wrk_a: {} } },
			"WORKSPACE_LIMITS.wrk_a: must set at least one of requests_per_minute, input_tokens_per_minute, output_tokens_per_minute, budget",
		],
	])("rejects %s, naming the field", (_name, raw, message) => {
		expect(fails(raw).message.startsWith(message)).toBe(true);
	});
});
