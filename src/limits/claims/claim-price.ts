import type { BatchScan } from "../../lib/json/batch-requests";
import type { Family } from "../rates/families";
import { batchCostOf, costOf, type Price } from "../spend/money";
import { familyFor, type TierTable, tierOf } from "../rates/tiers";

/** Bytes per token for every estimate the guard makes itself: a body's input, an answer's delivered output. */
export const BYTES_PER_TOKEN = 4;

/** Tokens estimated from `bytes`. */
export function tokensOf(bytes: number): number {
	return Math.ceil(Math.max(0, bytes) / BYTES_PER_TOKEN);
}

/**
 * The prices a request may be charged at: its model's (its family's, else the tier's), or, while
 * the model is not known, every price of the tier, of which a claim takes the dearest.
 */
export function pricesFor(tiers: TierTable, orgId: string, model: string | undefined, modelKnown: boolean): Price[] {
	const tier = tierOf(tiers, orgId);
	if (modelKnown) {
		const price = familyFor(tiers, orgId, model)?.price ?? tier.price;
		return price === undefined ? [] : [price];
	}
	const prices = tier.families.map((family) => family.price ?? tier.price);
	if (tier.price !== undefined) prices.push(tier.price);
	return prices.filter((price): price is Price => price !== undefined);
}

/** The most `input` and `output` tokens can cost at any of `prices` (at the batch price for a batch), nano-dollars (0 when unpriced). */
export function claimCost(prices: readonly Price[], input: number, output: number, batch = false): number {
	let most = 0;
	for (const price of prices) {
		const tokens = { input, output, cacheWrite: 0, cacheRead: 0 };
		most = Math.max(most, batch ? batchCostOf(price, tokens) : costOf(price, tokens));
	}
	return most;
}

/** The families with pools of their own in `orgId`'s tier: where a request of unknown model could land besides the organisation's pool. */
export function pooledFamilies(tiers: TierTable, orgId: string): Family[] {
	return tierOf(tiers, orgId).families.filter((family) => family.limits !== undefined);
}

/**
 * What a batch's requests may cost: every request's `max_tokens` at its model's batch price (the
 * tier's dearest for a request whose model is unknown), and the body's `inputTokens` at the
 * dearest batch price of the models it names.
 */
export function batchClaim(tiers: TierTable, orgId: string, scan: BatchScan, inputTokens: number): { output: number; nanos: number } {
	let output = scan.unknown.maxTokens;
	let nanos = claimCost(pricesFor(tiers, orgId, undefined, false), 0, scan.unknown.maxTokens, true);
	const inputPrices = scan.unknown.requests > 0 || scan.byModel.size === 0 ? pricesFor(tiers, orgId, undefined, false) : [];
	for (const [model, tally] of scan.byModel) {
		const prices = pricesFor(tiers, orgId, model, true);
		output += tally.maxTokens;
		nanos += claimCost(prices, 0, tally.maxTokens, true);
		inputPrices.push(...prices);
	}
	nanos += claimCost(inputPrices, inputTokens, 0, true);
	return { output, nanos };
}
