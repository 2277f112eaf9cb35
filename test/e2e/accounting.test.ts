// Issue 19 ("Usage and money that cannot be dodged or overspent"), proven black box: `npm start`'s
// server in front of an accounting origin (accounting-kit.ts) whose answers report the usage each
// test chooses. Every test uses organisations of its own (local state persists between runs), asserts
// what the client got, what the origin received and what the admin API shows, and ends with
// ACCOUNTING.md's invariant: no claim outstanding, and what was charged equals what was settled.
import { setTimeout as pace } from "node:timers/promises";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
	type AccountingOrigin,
	type AccountingRecord,
	BATCH_USAGE_HEADER,
	costNanos,
	createKey,
	expectSettled,
	freshOrg,
	JSON_CUT,
	nanosPerToken,
	price,
	readStream,
	SSE_HEADER,
	spendWhen,
	stackArgs,
	startAccountingOrigin,
	type TierSpec,
	USAGE_HEADER,
	type Usage,
} from "./accounting-kit";
import { type Answer, auth, chunked, expectEnvelope, fetchAnswer, fromRaw, messageBody, rawAnswer, within } from "./hostile-kit";
import { type LocalServer, startLocalServer } from "./local-server";
import { chunk, openRaw, requestHead } from "./raw-http";
import { BEHAVIOUR_HEADER } from "./recording-origin";

const JSON_TYPE: [string, string] = ["content-type", "application/json"];
const ROOMY = { requests_per_minute: 1000, input_tokens_per_minute: 1_000_000, output_tokens_per_minute: 1_000_000 };

/**
 * One accounting origin and one guard per describe: the guard gets `tiers`, and `orgs` (a name
 * for the test, to a fresh organisation ID) are put on their tiers; each gets an API key through
 * the admin API before the tests run.
 */
function stackPerDescribe(setup: { tiers: Record<string, TierSpec>; orgs: Record<string, string>; routes?: Record<string, Record<string, unknown>> }) {
	const stack = {
		server: undefined as unknown as LocalServer,
		origin: undefined as unknown as AccountingOrigin,
		/** Test name to organisation ID. */
		org: {} as Record<string, string>,
		/** Test name to API key. */
		key: {} as Record<string, string>,
	};
	for (const name of Object.keys(setup.orgs)) stack.org[name] = freshOrg(name);
	beforeAll(async () => {
		stack.origin = await startAccountingOrigin();
		const orgTiers = Object.fromEntries(Object.entries(setup.orgs).map(([name, tier]) => [stack.org[name] as string, tier]));
		stack.server = await startLocalServer(stackArgs({ origin: stack.origin.url, tiers: setup.tiers, orgs: orgTiers, routes: setup.routes }));
		for (const name of Object.keys(setup.orgs)) stack.key[name] = await createKey(stack.server, stack.org[name] as string);
	});
	afterAll(async () => {
		await stack.server?.stop();
		await stack.origin?.stop();
	});
	return stack;
}

/** A raw POST with a content-length, on its own connection. */
function post(server: LocalServer, path: string, key: string, body: string | Uint8Array, extra: [string, string][] = []): Promise<Answer> {
	return rawAnswer(server, "POST", path, [...auth(key), JSON_TYPE, ["content-length", String(Buffer.byteLength(body))], ...extra], body);
}

/** A Messages body of `model` with `max_tokens`, its one message `content`. */
function message(model: string, maxTokens: number, content = "hi", extra: Record<string, unknown> = {}): string {
	return JSON.stringify({ model, max_tokens: maxTokens, messages: [{ role: "user", content }], ...extra });
}

/** The sum of the costs of what the origin reported in `records`, at `at` (times `factor`). */
function reportedCost(records: readonly AccountingRecord[], at: ReturnType<typeof price>, factor = 1): number {
	return records.flatMap((record) => record.reported).reduce((total, usage) => total + costNanos(usage, at, factor), 0);
}

/** The records whose body the origin received whole. */
function whole(records: readonly AccountingRecord[]): AccountingRecord[] {
	return records.filter((record) => record.bodyOutcome === "complete");
}

/** Resolves once every record under `prefix` has ended its body and its response, one way or the other. */
async function originDone(origin: AccountingOrigin, prefix: string): Promise<AccountingRecord[]> {
	await origin.waitFor(
		() => origin.at(prefix).every((record) => record.bodyOutcome !== "pending" && record.responseOutcome !== "pending"),
		`every request under ${prefix} end`,
	);
	return origin.at(prefix);
}

/** Tokens a per-minute bucket refills in `ms` (what a limit may admit beyond itself while a test runs). */
function refill(perMinute: number, ms: number): number {
	return Math.floor((perMinute * ms) / 60_000);
}

// -------------------------------------------------------------------------------------------------

/** $1 and $5 per million input and output tokens: 1,000 and 5,000 nano-dollars a token. */
const BUDGET_PRICE = price(1, 5);
const BUDGET_USD = 0.02;

describe("money: a budget is claimed at admission, never overspent (exact mode)", () => {
	const stack = stackPerDescribe({
		tiers: { acct_budget: { ...ROOMY, price: BUDGET_PRICE, budgets: { organization: { day: BUDGET_USD, month: 10 } } } },
		orgs: { burst: "acct_budget", maxTokens: "acct_budget" },
	});

	it("30 concurrent messages on a small budget spend at most the budget; the refused never reach the origin", async () => {
		const { server, origin } = stack;
		const key = stack.key.burst as string;
		// About 4,000 bytes: an estimate of 1,000 input tokens. Each claims 1,000 x $1/M + 1,000 x $5/M = $0.006
		// and is reported as 900 in and 800 out ($0.0049): the $0.02 budget covers three at once, not thirty.
		const body = messageBody(4000, 1000);
		expect(body.byteLength).toBeGreaterThanOrEqual(3600);
		const usage: Usage = { input_tokens: 900, output_tokens: 800 };
		const answers = await Promise.all(
			Array.from({ length: 30 }, (_, i) =>
				fetchAnswer(`${server.url}/v1/messages?case=burst-${i}`, {
					method: "POST",
					headers: { ...Object.fromEntries(auth(key)), "content-type": "application/json", [USAGE_HEADER]: JSON.stringify(usage) },
					body: body.toString(),
				}),
			),
		);
		const admitted = answers.filter((answer) => answer.status === 200);
		const refused = answers.filter((answer) => answer.status !== 200);
		for (const answer of refused) {
			expectEnvelope(answer, 429, "rate_limit_error");
			expect(answer.headers["x-should-retry"]).toBe("false");
		}
		const received = await originDone(origin, "/v1/messages?case=burst-");
		// The origin received the admitted requests and no other.
		expect(received).toHaveLength(admitted.length);
		const spentNanos = reportedCost(received, BUDGET_PRICE);
		expect(admitted.length, "the budget covers a few").toBeGreaterThanOrEqual(1);
		expect(spentNanos, `${admitted.length} admitted spent $${spentNanos / 1e9} of a $${BUDGET_USD} budget`).toBeLessThanOrEqual(BUDGET_USD * 1e9);
		await expectSettled(server, stack.org.burst as string, { settled: admitted.length, chargedNanos: spentNanos });
	});

	it("one message whose max_tokens could pass the budget left is refused before the origin is contacted", async () => {
		const { server, origin } = stack;
		const key = stack.key.maxTokens as string;
		const ask = (tag: string, maxTokens: number, usage: Usage) =>
			post(server, `/v1/messages?case=max-tokens-${tag}`, key, messageBody(400, maxTokens), [[USAGE_HEADER, JSON.stringify(usage)]]);
		// First $0.0049 of the $0.02 is spent (100 in, 960 out): $0.0151 is left.
		const first = await ask("spend", 1000, { input_tokens: 100, output_tokens: 960 });
		expect(first.status, first.text).toBe(200);
		// 3,500 x $5/M = $0.0175 of output could pass what is left, though not the budget itself.
		const refused = await ask("over", 3500, { input_tokens: 100, output_tokens: 10 });
		expectEnvelope(refused, 429, "rate_limit_error");
		expect(refused.headers["x-should-retry"]).toBe("false");
		// What it asks, not the organisation, was refused: a smaller max_tokens is admitted.
		const smaller = await ask("fits", 1000, { input_tokens: 100, output_tokens: 10 });
		expect(smaller.status, smaller.text).toBe(200);
		expect(origin.at("/v1/messages?case=max-tokens-over")).toEqual([]);
		const received = [...origin.at("/v1/messages?case=max-tokens-spend"), ...origin.at("/v1/messages?case=max-tokens-fits")];
		expect(received).toHaveLength(2);
		await expectSettled(server, stack.org.maxTokens as string, { settled: 2, chargedNanos: reportedCost(received, BUDGET_PRICE) });
	});
});

// -------------------------------------------------------------------------------------------------

const INPUT_LIMIT = 20_000;
/** Input is free here: an upload refused half-way may be charged its input read either way. */
const INPUT_PRICE = price(0, 5);

describe("input tokens: concurrent chunked uploads share one allowance, slice by slice", () => {
	const stack = stackPerDescribe({
		tiers: { acct_input: { requests_per_minute: 1000, input_tokens_per_minute: INPUT_LIMIT, output_tokens_per_minute: 1_000_000, price: INPUT_PRICE } },
		orgs: { alone: "acct_input", six: "acct_input", twenty: "acct_input" },
	});
	/** About 60 KB: some 15,000 input tokens, under the 20,000 a minute alone; two are over it. */
	const BODY = messageBody(60_000);

	const upload = (tag: string, key: string) =>
		rawAnswer(stack.server, "POST", `/v1/messages?case=${tag}`, [...auth(key), JSON_TYPE, ["transfer-encoding", "chunked"]], chunked(BODY, 8 * 1024));

	it("admits one 60 KB chunked upload alone (each is under the limit)", async () => {
		const answer = await upload("alone", stack.key.alone as string);
		expect(answer.status, answer.text).toBe(200);
		const received = await originDone(stack.origin, "/v1/messages?case=alone");
		expect(received.map((record) => [record.bodyBytes, record.bodyOutcome])).toEqual([[BODY.byteLength, "complete"]]);
		await expectSettled(stack.server, stack.org.alone as string, { settled: 1, chargedNanos: reportedCost(received, INPUT_PRICE) });
	});

	it.each([
		["six", 6],
		["twenty", 20],
	])("admits in total at most the input limit of %s concurrent chunked uploads; the others get 429 and never reach the origin whole", async (name, count) => {
		const key = stack.key[name] as string;
		const started = Date.now();
		const answers = await Promise.all(Array.from({ length: count }, (_, i) => upload(`${name}-${i}-`, key)));
		const elapsed = Date.now() - started;
		const received = await originDone(stack.origin, `/v1/messages?case=${name}-`);
		for (const [i, answer] of answers.entries()) {
			const mine = stack.origin.at(`/v1/messages?case=${name}-${i}-`);
			if (answer.status === 200) {
				expect(mine.map((record) => record.bodyOutcome)).toEqual(["complete"]);
			} else {
				expectEnvelope(answer, 429, "rate_limit_error");
				expect(whole(mine), `refused upload ${i} reached the origin whole`).toEqual([]);
			}
		}
		const admittedTokens = whole(received).reduce((total, record) => total + record.bodyBytes, 0) / 4;
		// A claim never passes the limit itself; the bucket refills while the uploads run.
		const bound = INPUT_LIMIT + refill(INPUT_LIMIT, elapsed);
		expect(admittedTokens, `${whole(received).length} of ${count} uploads reached the origin whole`).toBeLessThanOrEqual(bound);
		await expectSettled(stack.server, stack.org[name] as string, { settled: count, chargedNanos: reportedCost(received, INPUT_PRICE) });
	});
});

// -------------------------------------------------------------------------------------------------

/** Output at $10 per million (10,000 nano-dollars a token); input free, so spend counts output alone. */
const STREAM_PRICE = price(0, 10);

describe("output: an answer abandoned part-way is charged what passed through the guard", () => {
	const stack = stackPerDescribe({ tiers: { acct_stream: { ...ROOMY, price: STREAM_PRICE } }, orgs: { abandoned: "acct_stream" } });

	it("charges a stream abandoned at 75% at least the estimate of the 30 deltas delivered (not 1 token)", async () => {
		const { server, origin } = stack;
		const key = stack.key.abandoned as string;
		// 40 deltas of 100 bytes are planned, and a final usage of 1,000 output tokens; the origin stops
		// after 30, so nobody (neither client nor guard) ever sees the final usage.
		const plan = { deltas: 40, delta_bytes: 100, pause_after: 30, input_tokens: 10, output_tokens: 1000 };
		const reader = readStream(
			server,
			"/v1/messages?case=abandoned",
			{ ...Object.fromEntries(auth(key)), "content-type": "application/json", [SSE_HEADER]: JSON.stringify(plan) },
			message("claude-test-1", 2000, "tell me a story", { stream: true }),
		);
		expect((await reader.head).status).toBe(200);
		await reader.deltasReached(30);
		reader.leave();
		await origin.waitFor(() => origin.at("/v1/messages?case=abandoned")[0]?.responseOutcome === "cut", "the guard cancel the abandoned stream");
		const [record] = origin.at("/v1/messages?case=abandoned");
		expect(record?.deltasSent).toBe(30);
		expect(record?.reported).toEqual([]);
		// 30 deltas x 100 bytes at 4 bytes a token: 750 tokens delivered; at most the 2,000 claimed.
		const delivered = (30 * 100) / 4;
		const perToken = nanosPerToken(STREAM_PRICE.output);
		const spent = await spendWhen(server, stack.org.abandoned as string, (nanos) => nanos >= delivered * perToken);
		const outputTokens = spent / perToken;
		expect(outputTokens, "output tokens charged").toBeGreaterThanOrEqual(delivered);
		expect(outputTokens, "output tokens charged").toBeLessThanOrEqual(2000);
		await expectSettled(server, stack.org.abandoned as string, { settled: 1, chargedNanos: spent });
	});
});

// -------------------------------------------------------------------------------------------------

const OPUS_PER_MINUTE = 3;
/** Input free: a request refused once its model is read may be charged its input read either way. */
const FAMILY_PRICE = price(0, 5);
const OPUS_PRICE = price(0, 75);
const OPUS = "claude-opus-4";
const BURST = 8;
/** How late the late body starts. */
const LATE_BODY_MS = 1000;

describe("model families: the Opus pool cannot be dodged", () => {
	const stack = stackPerDescribe({
		tiers: {
			acct_family: {
				requests_per_minute: 1000,
				input_tokens_per_minute: 10_000_000,
				output_tokens_per_minute: 10_000_000,
				price: FAMILY_PRICE,
				families: {
					opus: { models: ["claude-opus-*"], requests_per_minute: OPUS_PER_MINUTE, input_tokens_per_minute: 10_000_000, output_tokens_per_minute: 10_000_000, price: OPUS_PRICE },
					haiku: { models: ["claude-haiku-*"], requests_per_minute: 1000, input_tokens_per_minute: 10_000_000, output_tokens_per_minute: 10_000_000, price: FAMILY_PRICE },
				},
			},
		},
		orgs: { plain: "acct_family", duplicate: "acct_family", deep: "acct_family", late: "acct_family" },
	});

	/** Sends `BURST` Opus requests at once, each by `send`, and checks the pool held. */
	async function burst(name: string, send: (path: string, key: string) => Promise<Answer>): Promise<void> {
		const key = stack.key[name] as string;
		const started = Date.now();
		const answers = await Promise.all(Array.from({ length: BURST }, (_, i) => send(`/v1/messages?case=${name}-${i}`, key)));
		const elapsed = Date.now() - started;
		const admitted = answers.filter((answer) => answer.status === 200);
		for (const answer of answers) if (answer.status !== 200) expectEnvelope(answer, 429, "rate_limit_error");
		const received = await originDone(stack.origin, `/v1/messages?case=${name}-`);
		// The origin reads the body as JSON.parse does: every request it took was an Opus request.
		for (const record of whole(received)) expect(record.reported.map((usage) => usage.model)).toEqual([OPUS]);
		expect(whole(received)).toHaveLength(admitted.length);
		const bound = OPUS_PER_MINUTE + refill(OPUS_PER_MINUTE, elapsed);
		expect(admitted.length, `Opus requests admitted of ${BURST} against ${OPUS_PER_MINUTE} a minute`).toBeLessThanOrEqual(bound);
		await expectSettled(stack.server, stack.org[name] as string, { atLeast: admitted.length, chargedNanos: reportedCost(received, OPUS_PRICE) });
	}

	it("holds a plain burst of Opus requests to the pool (the configuration works)", async () => {
		await burst("plain", (path, key) => post(stack.server, path, key, message(OPUS, 16)));
	});

	it("holds duplicate model keys sent in separate writes (haiku first, opus last) to the Opus pool", async () => {
		await burst("duplicate", async (path, key) => {
			const first = '{"model":"claude-haiku-4","max_tokens":16,"messages":[{"role":"user","content":"hi"}]';
			const last = `,"model":"${OPUS}"}`;
			const exchange = openRaw(stack.server.url);
			try {
				exchange.write(requestHead("POST", path, [...auth(key), JSON_TYPE, ["content-length", String(first.length + last.length)]]) + first);
				// The client's own pace (the input under test): the duplicate key arrives in a later write.
				await pace(100);
				exchange.write(last);
				return fromRaw(await within(exchange.response, 20_000, `an answer to ${path}`));
			} finally {
				exchange.destroy();
			}
		});
	});

	it("holds a model placed after 64 KiB of prompt to the Opus pool", async () => {
		const body = JSON.stringify({ max_tokens: 16, messages: [{ role: "user", content: "a".repeat(70 * 1024) }], model: OPUS });
		expect(body.indexOf('"model"')).toBeGreaterThan(64 * 1024);
		await burst("deep", (path, key) => post(stack.server, path, key, body));
	});

	it("holds a body that starts late (past the model peek's 250 ms) to the Opus pool", async () => {
		const body = message(OPUS, 16);
		await burst("late", async (path, key) => {
			const exchange = openRaw(stack.server.url);
			try {
				exchange.write(requestHead("POST", path, [...auth(key), JSON_TYPE, ["content-length", String(body.length)]]));
				// The client's own pace (the input under test): well past the 250 ms the model peek waits,
				// whatever the guard spends before its peek starts (300 ms fell inside it on a busy machine).
				await pace(LATE_BODY_MS);
				exchange.write(body);
				return fromRaw(await within(exchange.response, 20_000, `an answer to ${path}`));
			} finally {
				exchange.destroy();
			}
		});
	});
});

// -------------------------------------------------------------------------------------------------

const BATCH_FACTOR = 0.5;

describe("batches: claimed at creation at the batch price, charged from their results", () => {
	const stack = stackPerDescribe({
		tiers: {
			acct_batch: { ...ROOMY, price: BUDGET_PRICE, budgets: { organization: { day: 0.01, month: 10 } } },
			acct_batch_roomy: { ...ROOMY, price: BUDGET_PRICE, budgets: { organization: { day: 1, month: 10 } } },
		},
		orgs: { over: "acct_batch", spent: "acct_batch", charged: "acct_batch_roomy" },
	});

	const batchBody = (count: number, maxTokens: number) =>
		JSON.stringify({
			requests: Array.from({ length: count }, (_, i) => ({ custom_id: `r${i}`, params: { model: "claude-test-1", max_tokens: maxTokens, messages: [{ role: "user", content: "hi" }] } })),
		});

	/** Creates a batch through the guard, then reads its results through the guard (from results_url). */
	async function createAndRead(tag: string, key: string, count: number, maxTokens: number, usages: Usage[]): Promise<void> {
		const created = await post(stack.server, `/v1/messages/batches?case=${tag}`, key, batchBody(count, maxTokens), [[BATCH_USAGE_HEADER, JSON.stringify(usages)]]);
		expect(created.status, created.text).toBe(200);
		const { id, results_url: resultsUrl } = JSON.parse(created.text) as { id: string; results_url: string };
		expect(new URL(resultsUrl).pathname).toBe(`/v1/messages/batches/${id}/results`);
		expect(resultsUrl.startsWith(stack.origin.url)).toBe(false);
		const results = await fetchAnswer(`${stack.server.url}/v1/messages/batches/${id}/results?case=${tag}`, { headers: Object.fromEntries(auth(key)) });
		expect(results.status, results.text).toBe(200);
		expect(results.text.trim().split("\n")).toHaveLength(count);
	}

	it("refuses at creation a batch whose max_tokens at the batch price pass the budget, before the origin", async () => {
		const key = stack.key.over as string;
		// 10 x 1,000 output tokens x $5/M x 0.5 = $0.025 could be spent: over the $0.01 budget.
		const refused = await post(stack.server, "/v1/messages/batches?case=over-big", key, batchBody(10, 1000));
		expectEnvelope(refused, 429, "rate_limit_error");
		expect(refused.headers["x-should-retry"]).toBe("false");
		expect(stack.origin.at("/v1/messages/batches?case=over-big")).toEqual([]);
		// One request of 100 output tokens ($0.00025 at the batch price) fits: the size was refused, not the organisation.
		await createAndRead("over-small", key, 1, 100, [{ input_tokens: 20, output_tokens: 50 }]);
		const results = stack.origin.at("/v1/messages/batches/").filter((record) => record.url.endsWith("case=over-small"));
		expect(results).toHaveLength(1);
		await expectSettled(stack.server, stack.org.over as string, { chargedNanos: reportedCost(results, BUDGET_PRICE, BATCH_FACTOR) });
	});

	it("refuses a batch on a spent budget (429, the origin never sees it)", async () => {
		const key = stack.key.spent as string;
		const usage: Usage = { input_tokens: 100, output_tokens: 1000 };
		// Messages of $0.0051 each until the $0.01 budget refuses one.
		let last: Answer | undefined;
		for (let i = 0; i < 5 && last?.status !== 429; i++) {
			last = await post(stack.server, `/v1/messages?case=spent-${i}`, key, messageBody(400, 1000), [[USAGE_HEADER, JSON.stringify(usage)]]);
		}
		expectEnvelope(last as Answer, 429, "rate_limit_error");
		// Four requests of 1,000 output tokens claim at least 4 x 1,000 x $5/M x 0.5 = $0.01 at the batch price.
		const refused = await post(stack.server, "/v1/messages/batches?case=spent", key, batchBody(4, 1000));
		expectEnvelope(refused, 429, "rate_limit_error");
		expect(refused.headers["x-should-retry"]).toBe("false");
		expect(stack.origin.at("/v1/messages/batches?case=spent")).toEqual([]);
		const messages = await originDone(stack.origin, "/v1/messages?case=spent-");
		await expectSettled(stack.server, stack.org.spent as string, { settled: messages.length, chargedNanos: reportedCost(messages, BUDGET_PRICE) });
	});

	it("charges a batch's results, read through the guard, at the batch price (half the price)", async () => {
		const key = stack.key.charged as string;
		const usages = [
			{ input_tokens: 40, output_tokens: 300 },
			{ input_tokens: 60, output_tokens: 120 },
		];
		await createAndRead("charged", key, 2, 500, usages);
		const results = stack.origin.at("/v1/messages/batches/").filter((record) => record.url.endsWith("case=charged"));
		expect(results.flatMap((record) => record.reported)).toHaveLength(2);
		// (100 x $1/M + 420 x $5/M) x 0.5 = $0.0011.
		const expected = reportedCost(results, BUDGET_PRICE, BATCH_FACTOR);
		expect(expected).toBe(1_100_000);
		expect(await spendWhen(stack.server, stack.org.charged as string, (nanos) => nanos >= expected), "spend after reading the results").toBe(expected);
		await expectSettled(stack.server, stack.org.charged as string, { chargedNanos: expected });
	});
});

// -------------------------------------------------------------------------------------------------

describe("encoded bodies: estimated by their decoded size", () => {
	const stack = stackPerDescribe({
		tiers: { acct_gzip: { requests_per_minute: 1000, input_tokens_per_minute: INPUT_LIMIT, output_tokens_per_minute: 1_000_000, price: INPUT_PRICE } },
		orgs: { gzip: "acct_gzip" },
		routes: { "messages.create": { content_encodings: ["gzip"] } },
	});

	it("refuses with 429 a gzip body of 400 KB decoded against 20,000 input tokens a minute, and the origin never receives it whole", async () => {
		const { server, origin } = stack;
		const key = stack.key.gzip as string;
		// A small one first (4 KB decoded, 1,000 tokens): the route decodes gzip and admits it whole.
		const small = messageBody(4000);
		const admitted = await post(server, "/v1/messages?case=gzip-small", key, gzipSync(small), [["content-encoding", "gzip"]]);
		expect(admitted.status, admitted.text).toBe(200);
		expect(origin.at("/v1/messages?case=gzip-small").map((record) => [record.bodyBytes, record.bodyOutcome])).toEqual([[small.byteLength, "complete"]]);
		// 400 KB decoded is some 100,000 tokens; gzip makes it a few hundred bytes (an estimate of ~100 tokens if counted as sent).
		const big = gzipSync(messageBody(400_000));
		expect(big.byteLength).toBeLessThan(4096);
		const refused = await post(server, "/v1/messages?case=gzip-big", key, big, [["content-encoding", "gzip"]]);
		expectEnvelope(refused, 429, "rate_limit_error");
		const received = await originDone(origin, "/v1/messages?case=gzip-big");
		expect(whole(received)).toEqual([]);
		const charged = reportedCost(origin.at("/v1/messages?case=gzip-"), INPUT_PRICE);
		await expectSettled(server, stack.org.gzip as string, { settled: 2, chargedNanos: charged });
	});
});

// -------------------------------------------------------------------------------------------------

const ENDS_PRICE = price(1, 5);
const ENDS_CAP = 64 * 1024;

describe("exactly once: every early end leaves no claim outstanding", () => {
	const paths = ["originError", "abortBefore", "abortAfter", "timeout", "cutStream", "stall", "tooLarge", "jsonCut"] as const;
	const stack = stackPerDescribe({
		tiers: { acct_ends: { ...ROOMY, price: ENDS_PRICE } },
		orgs: Object.fromEntries(paths.map((path) => [path, "acct_ends"])),
		routes: { "messages.create": { response_timeout_seconds: 2, body_idle_timeout_seconds: 1, max_body_bytes: ENDS_CAP } },
	});
	const headersOf = (name: (typeof paths)[number], extra: Record<string, string> = {}) => ({
		...Object.fromEntries(auth(stack.key[name] as string)),
		"content-type": "application/json",
		...extra,
	});
	const settledOnce = (name: (typeof paths)[number]) => expectSettled(stack.server, stack.org[name] as string, { settled: 1 });

	it("origin error (503)", async () => {
		const answer = await post(stack.server, "/v1/messages?case=origin-error", stack.key.originError as string, message("claude-test-1", 100), [[BEHAVIOUR_HEADER, "503"]]);
		expect(answer.status).toBeGreaterThanOrEqual(500);
		expect((await originDone(stack.origin, "/v1/messages?case=origin-error")).map((record) => record.responseOutcome)).toEqual(["answered"]);
		await settledOnce("originError");
	});

	it("client abort before the response headers", async () => {
		const body = message("claude-test-1", 100);
		const exchange = openRaw(stack.server.url);
		exchange.write(requestHead("POST", "/v1/messages?case=abort-before", [...auth(stack.key.abortBefore as string), JSON_TYPE, [BEHAVIOUR_HEADER, "hang"], ["content-length", String(body.length)]]) + body);
		await stack.origin.waitFor(() => stack.origin.at("/v1/messages?case=abort-before")[0]?.bodyOutcome === "complete", "the request the client will leave");
		exchange.destroy();
		await originDone(stack.origin, "/v1/messages?case=abort-before");
		await settledOnce("abortBefore");
	});

	it("client abort after the response headers (mid-stream)", async () => {
		const plan = { deltas: 20, delta_bytes: 40, pause_after: 5 };
		const reader = readStream(stack.server, "/v1/messages?case=abort-after", headersOf("abortAfter", { [SSE_HEADER]: JSON.stringify(plan) }), message("claude-test-1", 500, "hi", { stream: true }));
		expect((await reader.head).status).toBe(200);
		await reader.deltasReached(5);
		reader.leave();
		await originDone(stack.origin, "/v1/messages?case=abort-after");
		const view = await settledOnce("abortAfter");
		// What passed (5 x 40 bytes: 50 tokens at $5/M) is charged: never nothing.
		expect(Number(view.claims?.settled_usd)).toBeGreaterThan(0);
	});

	it("504: the origin does not answer within response_timeout_seconds", async () => {
		const answer = await post(stack.server, "/v1/messages?case=timeout", stack.key.timeout as string, message("claude-test-1", 100), [[BEHAVIOUR_HEADER, "hang"]]);
		expectEnvelope(answer, 504, "timeout_error");
		await originDone(stack.origin, "/v1/messages?case=timeout");
		await settledOnce("timeout");
	});

	it("mid-stream error: the origin cuts its event stream", async () => {
		const plan = { deltas: 20, delta_bytes: 40, cut_after: 5 };
		const reader = readStream(stack.server, "/v1/messages?case=cut-stream", headersOf("cutStream", { [SSE_HEADER]: JSON.stringify(plan) }), message("claude-test-1", 500, "hi", { stream: true }));
		expect((await reader.head).status).toBe(200);
		await within(reader.ended, 20_000, "the end of the cut stream");
		expect(reader.deltas()).toBe(5);
		expect(reader.text()).toContain("event: error");
		await originDone(stack.origin, "/v1/messages?case=cut-stream");
		await settledOnce("cutStream");
	});

	it("body stall: the client stops sending past body_idle_timeout_seconds", async () => {
		const body = messageBody(4000);
		const exchange = openRaw(stack.server.url);
		try {
			exchange.write(requestHead("POST", "/v1/messages?case=stall", [...auth(stack.key.stall as string), JSON_TYPE, ["transfer-encoding", "chunked"]]));
			// Half the body, then nothing: the route's 1 s idle bound ends the upload.
			exchange.write(chunk(body.subarray(0, 2000)));
			const answer = fromRaw(await within(exchange.response, 20_000, "an answer to the stalled upload"));
			expect(answer.status, answer.text).toBe(408);
		} finally {
			exchange.destroy();
		}
		expect(whole(await originDone(stack.origin, "/v1/messages?case=stall"))).toEqual([]);
		await settledOnce("stall");
	});

	it("413 mid-upload: a chunked body past the route's cap", async () => {
		const answer = await rawAnswer(
			stack.server,
			"POST",
			"/v1/messages?case=too-large",
			[...auth(stack.key.tooLarge as string), JSON_TYPE, ["transfer-encoding", "chunked"]],
			chunked(messageBody(2 * ENDS_CAP), 8 * 1024),
		);
		expectEnvelope(answer, 413, "request_too_large");
		expect(whole(await originDone(stack.origin, "/v1/messages?case=too-large"))).toEqual([]);
		await settledOnce("tooLarge");
	});

	it("a JSON answer cut before its usage is charged its claim", async () => {
		const maxTokens = 700;
		const body = message("claude-test-1", maxTokens, "x".repeat(1000));
		const answer = await post(stack.server, "/v1/messages?case=json-cut", stack.key.jsonCut as string, body, [[BEHAVIOUR_HEADER, JSON_CUT]]);
		expect(answer.status).not.toBe(200);
		const [record] = await originDone(stack.origin, "/v1/messages?case=json-cut");
		expect(record?.responseOutcome).toBe("cut");
		// The claim: ceil(length / 4) input tokens and max_tokens of output, at the tier's price.
		const claim = costNanos({ input_tokens: Math.ceil(body.length / 4), output_tokens: maxTokens }, ENDS_PRICE);
		expect(await spendWhen(stack.server, stack.org.jsonCut as string, (nanos) => nanos >= claim), "spend for the cut answer").toBe(claim);
		await expectSettled(stack.server, stack.org.jsonCut as string, { settled: 1, chargedNanos: claim });
	});

	// A limiter failure (the usage object failing or timing out after admission) cannot be provoked
	// end to end against `npm start`; the unit tests of the claim object cover that path.
});
