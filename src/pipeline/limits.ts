import type { BodyPlan } from "../body-limit/body-limit";
import type { Identity } from "../keys/authenticate";
import { RevokedKeyError, revokedKeyRefusal } from "../keys/revoked";
import { scanBatchRequests } from "../lib/json/batch-requests";
import { peekScan, peekTopLevelFields } from "../lib/peek-field";
import { enforceLimits, type LimitOutcome, type RequestFields, wantsFields } from "../limits/client/enforce-limits";
import type { Exchange } from "./exchange";

/**
 * How far the body is read for its `model` and `max_tokens` before admission: a Messages body of
 * the official SDKs is a few KB and arrives at once; a longer or slower one is claimed in every
 * pool it could land in, and read as it passes instead.
 */
const FIELDS_PEEK = { maxBytes: 64 * 1024, maxMs: 250 };

/**
 * Stage 5, the last check before forwarding, so no later check refuses a request unseen by the
 * limiter: the organisation's usage limits (`429`) and its `anthropic-ratelimit-*` headers on every
 * answer, and a key its organisation's usage object lists as revoked (`401`, answered by `keys/`).
 * Admission claims what the request may cost (ACCOUNTING.md): on a metered route the body's first
 * bytes are read (a tee: the origin still gets every byte) for its `model` and `max_tokens`, as
 * `JSON.parse` reads them.
 */
export async function chargeLimits(exchange: Exchange, identity: Identity | undefined, plan: BodyPlan): Promise<LimitOutcome | undefined> {
	const { request, route, config, env, state, ctx } = exchange;
	if (identity === undefined) return undefined;
	let fields: RequestFields | undefined;
	// No body: nothing to read. An encoded body: its fields are read decoded, as it passes.
	if (plan.kind === "none") fields = { known: true, maxTokens: 0 };
	else if (env.USAGE !== undefined && route.meterBatches && config.tiers !== undefined && plan.decode === undefined) {
		// A batch small enough to arrive at once is claimed whole before the origin is contacted.
		state.bodyTeed = true;
		const peeked = await peekScan(request, scanBatchRequests(), FIELDS_PEEK);
		fields = peeked?.complete === true ? { known: true, batch: peeked.scan } : { known: false };
	} else if (env.USAGE !== undefined && wantsFields(route, config) && plan.decode === undefined) {
		state.bodyTeed = true;
		const peeked = await peekTopLevelFields(request, ["model", "max_tokens"], FIELDS_PEEK);
		const model = peeked?.scan.fields.get("model");
		const maxTokens = peeked?.scan.fields.get("max_tokens");
		fields = {
			known: peeked?.complete === true,
			model: model?.kind === "string" ? model.value : undefined,
			maxTokens: maxTokens?.kind === "number" && Number.isSafeInteger(maxTokens.value) && maxTokens.value > 0 ? maxTokens.value : 0,
		};
	}
	const body = { declared: plan.declared, lengthKnown: plan.declared !== undefined && plan.decode === undefined, present: plan.kind !== "none", fields };
	let limits: LimitOutcome;
	try {
		limits = await enforceLimits(route, config, env.USAGE, identity, state, body, (promise) => ctx.waitUntil(promise));
	} catch (error) {
		// The limiter is the first to hear of a revoked key (on its calls to the usage object); keys/ answers it.
		if (error instanceof RevokedKeyError) throw revokedKeyRefusal(error);
		throw error;
	}
	Object.assign(state.responseHeaders, limits.headers);
	const claim = limits.claim;
	if (claim !== undefined) {
		// Registered at once: a client that leaves may take the rest of the request's run with it.
		if (request.signal?.aborted === true) claim.clientLeft(0);
		else request.signal?.addEventListener("abort", () => claim.clientLeft(state.bytesIn?.() ?? 0), { once: true });
	}
	return limits;
}
