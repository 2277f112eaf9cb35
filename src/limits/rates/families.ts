import { ConfigError } from "../../config/config-error";
import { entriesOf, flag } from "../../config/config-fields";
import { describe as show, fieldsOf } from "../../config/config-json";
import type { BucketLimits } from "../decisions";
import { type Price, parsePrice } from "../spend/money";

/**
 * Model families: the models of a tier that share a pool of limits of their own (all Opus models,
 * all Sonnet models), and a price. A model no family names is charged to the organisation's pool
 * at the tier's price.
 */
export interface Family {
	readonly name: string;
	/** The model-id patterns, as written (`claude-opus-*`). */
	readonly models: readonly string[];
	/** Its own requests, input and output tokens per minute; absent, it shares the organisation's pool. */
	readonly limits: BucketLimits | undefined;
	/** Absent: the tier's price. */
	readonly price: Price | undefined;
	/** Whether input read from the prompt cache counts toward input tokens per minute. */
	readonly countCacheReads: boolean;
	readonly pattern: RegExp;
}

const FAMILY_FIELDS = ["models", "requests_per_minute", "input_tokens_per_minute", "output_tokens_per_minute", "price", "count_cache_reads"];
const LIMIT_FIELDS = ["requests_per_minute", "input_tokens_per_minute", "output_tokens_per_minute"] as const;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
/** A model id, with `*` standing for any run of characters. */
const MODEL_PATTERN = /^[A-Za-z0-9._:@/*-]{1,128}$/;

/**
 * `[vars.TIERS.<tier>.families.<name>]`: `models` (patterns, `*` for any characters), optionally its
 * own `requests_per_minute`, `input_tokens_per_minute` and `output_tokens_per_minute` (all three or
 * none), a `price` and `count_cache_reads`. The first family whose pattern matches a model wins; a
 * pattern may be in one family only.
 */
export function parseFamilies(value: unknown, at: string, perMinute: (value: unknown, at: string) => number, tierCountsCacheReads: boolean): Family[] {
	const families: Family[] = [];
	const owner = new Map<string, string>();
	for (const [name, raw] of entriesOf(value, at)) {
		const here = `${at}.${name}`;
		if (!NAME.test(name)) throw new ConfigError(here, "a family name is letters, digits, _ and - (at most 64)");
		const fields = fieldsOf(raw, here, FAMILY_FIELDS);
		const models = fields.models;
		if (!Array.isArray(models) || models.length === 0) {
			throw new ConfigError(`${here}.models`, `must be a non-empty array of model-id patterns such as ["claude-opus-*"], got ${show(models)}`);
		}
		for (const [i, model] of models.entries()) {
			if (typeof model !== "string" || !MODEL_PATTERN.test(model)) {
				throw new ConfigError(`${here}.models[${i}]`, `must be a model id of letters, digits and . _ : @ / - (with * for any characters), got ${show(model)}`);
			}
			const earlier = owner.get(model);
			if (earlier !== undefined) throw new ConfigError(`${here}.models[${i}]`, `${JSON.stringify(model)} is already in family ${earlier}`);
			owner.set(model, name);
		}
		const given = LIMIT_FIELDS.filter((field) => fields[field] !== undefined);
		if (given.length !== 0 && given.length !== LIMIT_FIELDS.length) {
			const missing = LIMIT_FIELDS.filter((field) => fields[field] === undefined);
			throw new ConfigError(`${here}.${missing[0]}`, `is required with ${given.join(", ")}: a family has all three limits of its own, or none (it then shares the organization's pool)`);
		}
		const limits =
			given.length === 0
				? undefined
				: {
						requestsPerMinute: perMinute(fields.requests_per_minute, `${here}.requests_per_minute`),
						inputTokensPerMinute: perMinute(fields.input_tokens_per_minute, `${here}.input_tokens_per_minute`),
						outputTokensPerMinute: perMinute(fields.output_tokens_per_minute, `${here}.output_tokens_per_minute`),
					};
		families.push({
			name,
			models: models as string[],
			limits,
			price: fields.price === undefined ? undefined : parsePrice(fields.price, `${here}.price`),
			countCacheReads: flag(fields.count_cache_reads, `${here}.count_cache_reads`, tierCountsCacheReads),
			pattern: compile(models as string[]),
		});
	}
	return families;
}

/** The family a model belongs to: the first whose pattern matches it. */
export function familyOf(families: readonly Family[], model: string | undefined): Family | undefined {
	if (model === undefined) return undefined;
	return families.find((family) => family.pattern.test(model));
}

function compile(patterns: readonly string[]): RegExp {
	const alternatives = patterns.map((pattern) => pattern.split("*").map(literal).join(".*"));
	return new RegExp(`^(?:${alternatives.join("|")})$`);
}

function literal(text: string): string {
	return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
