import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { generateApiKey } from "../src/keys/api-key";
import { callGuard, callGuardToSink, chunkedStream, configProblem, MISCONFIGURED, readEnvelope, sinkRecord, sinkRecordIfAny, startGuard } from "./helpers";
import { seedKey } from "./keys";

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
let orgs = 0;

/** A fresh organisation on the `tight` tier (10 requests per minute), and a key for it. */
async function tightOrg() {
	const org = `org_rl_${Date.now()}_${orgs++}`;
	const key = generateApiKey();
	await seedKey(env.KEYS as KVNamespace, key, { id: `key_${org}`, org_id: org });
	return { org, key, overrides: { ORG_TIERS: { [org]: "tight" } } };
}

describe("usage limits on the request path", () => {
	it("reports the organisation's limits on every admitted response", async () => {
		const { key, overrides } = await tightOrg();
		const response = await callGuardToSink("/v1/models", { headers: { "x-api-key": key } }, overrides);
		expect(response.status).toBe(200);
		expect(response.headers.get("anthropic-ratelimit-requests-limit")).toBe("10");
		expect(response.headers.get("anthropic-ratelimit-requests-remaining")).toBe("9");
		for (const name of ["requests", "input-tokens", "output-tokens", "tokens"]) {
			expect(response.headers.get(`anthropic-ratelimit-${name}-reset`)).toMatch(RFC3339);
			expect(response.headers.get(`anthropic-ratelimit-${name}-limit`)).toMatch(/^\d+$/);
		}
	});

	it("answers 429 rate_limit_error with retry-after once the tier's requests are spent", async () => {
		const { key, overrides } = await tightOrg();
		const remaining: string[] = [];
		for (let i = 0; i < 10; i++) {
			const ok = await callGuardToSink("/v1/models", { headers: { "x-api-key": key } }, overrides);
			expect(ok.status).toBe(200);
			remaining.push(ok.headers.get("anthropic-ratelimit-requests-remaining") ?? "");
		}
		expect(remaining).toEqual(["9", "8", "7", "6", "5", "4", "3", "2", "1", "0"]);
		const limited = await callGuardToSink("/v1/models", { headers: { "x-api-key": key } }, overrides);
		expect(limited.status).toBe(429);
		const body = await readEnvelope(limited);
		expect(body.error.type).toBe("rate_limit_error");
		expect(body.error.message).toContain("10 requests per minute");
		expect(body.request_id).toBe(limited.headers.get("request-id"));
		const retryAfter = Number(limited.headers.get("retry-after"));
		const retryAfterMs = Number(limited.headers.get("retry-after-ms"));
		expect(Number.isInteger(retryAfter) && retryAfter >= 1).toBe(true);
		expect(retryAfterMs).toBeGreaterThan(0);
		expect(retryAfter).toBe(Math.max(1, Math.ceil(retryAfterMs / 1000)));
		expect(limited.headers.get("x-should-retry")).toBe("true");
		expect(limited.headers.get("anthropic-ratelimit-requests-remaining")).toBe("0");
		await expect(sinkRecord(body.request_id)).rejects.toThrow("no record");
	});

	it("does not charge a request that a later check refuses", async () => {
		const { key, overrides } = await tightOrg();
		const oversized = new Request("https://guard.test/v1/messages", {
			method: "POST",
			body: new ReadableStream({ pull: (controller) => controller.close() }),
			headers: { "x-api-key": key, "content-type": "application/json", expect: "100-continue" },
			duplex: "half",
		} as RequestInit);
		oversized.headers.set("content-length", "33554433");
		const refused = await callGuardToSink(oversized, undefined, overrides);
		expect(refused.status).toBe(413);
		const next = await callGuardToSink("/v1/models", { headers: { "x-api-key": key } }, overrides);
		expect(next.headers.get("anthropic-ratelimit-requests-remaining")).toBe("9");
	});

	it("keeps the request unit of a chunked upload refused mid-stream after admission", async () => {
		const { key, overrides } = await tightOrg();
		const routes = [
			{ methods: ["POST"], path: "/v1/messages", max_body_bytes: 100, group: "messages" },
			{ methods: ["GET"], path: "/v1/models", max_body_bytes: 0, group: "models" },
		];
		const small = { ...overrides, ROUTES: routes };
		const body = chunkedStream(new Uint8Array(5000), 1000);
		const { response, settled } = await startGuard(
			"/v1/messages",
			{ method: "POST", body, headers: { "x-api-key": key }, duplex: "half" } as RequestInit,
			{ ORIGIN: env.SINK, ...small },
		);
		expect(response.status).toBe(413);
		expect(response.headers.get("anthropic-ratelimit-requests-remaining")).toBe("9");
		await response.text();
		await settled();
		// Not refunded: twelve refused 33 MiB uploads in a row would otherwise be read for free.
		const next = await callGuardToSink("/v1/models", { headers: { "x-api-key": key } }, small);
		expect(next.headers.get("anthropic-ratelimit-requests-remaining")).toBe("8");
	});

	const failing = () =>
		({
			idFromName: (name: string) => (env.USAGE as unknown as DurableObjectNamespace).idFromName(name),
			get: () => ({
				admit: () => Promise.reject(new Error("object exploded")),
				settle: () => Promise.reject(new Error("object exploded")),
				lease: () => Promise.reject(new Error("object exploded")),
			}),
		}) as unknown as DurableObjectNamespace;
	const modelsRoute = (policy?: string) => [
		{ methods: ["GET"], path: "/v1/models", max_body_bytes: 0, group: "models", ...(policy ? { limiter_failure: policy } : {}) },
	];

	it("admits the request and says so when the usage object fails (fail open, the default)", async () => {
		const { key, overrides } = await tightOrg();
		const response = await callGuardToSink("/v1/models", { headers: { "x-api-key": key } }, { ...overrides, USAGE: failing() as never });
		expect(response.status).toBe(200);
		expect(response.headers.get("x-guard-ratelimit")).toBe("unavailable");
	});

	it("answers 529 overloaded_error when the route fails closed", async () => {
		const { key, overrides } = await tightOrg();
		const response = await callGuardToSink(
			"/v1/models",
			{ headers: { "x-api-key": key } },
			{ ...overrides, USAGE: failing() as never, ROUTES: modelsRoute("closed") },
		);
		expect(response.status).toBe(529);
		const body = await readEnvelope(response);
		expect(body.error.type).toBe("overloaded_error");
		expect(response.headers.get("retry-after")).toBe("1");
		expect(response.headers.get("x-should-retry")).toBe("true");
		await expect(sinkRecord(body.request_id)).rejects.toThrow("no record");
	});

	it("admits a conservative in-isolate share of the tier when the route limits locally", async () => {
		const { key, overrides } = await tightOrg();
		const env = { ...overrides, USAGE: failing() as never, ROUTES: modelsRoute("local") };
		// The tight tier allows 10 a minute; one isolate alone admits 10% of that: one request.
		const first = await callGuardToSink("/v1/models", { headers: { "x-api-key": key } }, env);
		expect(first.status).toBe(200);
		expect(first.headers.get("x-guard-ratelimit")).toBe("unavailable");
		const second = await callGuardToSink("/v1/models", { headers: { "x-api-key": key } }, env);
		expect(second.status).toBe(429);
		expect((await readEnvelope(second)).error.type).toBe("rate_limit_error");
		expect(Number(second.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
	});

	/** The real usage object, but for the RPC methods `broken` replaces. */
	const partlyFailing = (broken: Record<string, () => Promise<never>>) =>
		({
			idFromName: (name: string) => (env.USAGE as unknown as DurableObjectNamespace).idFromName(name),
			get: (id: DurableObjectId) => {
				const real = (env.USAGE as unknown as DurableObjectNamespace<import("../src/limits/usage-object/usage-object").UsageObject>).get(id);
				const methods: Record<string, (request: never) => Promise<unknown>> = {
					admit: (request) => real.admit(request),
					grow: (request) => real.grow(request),
					settle: (request) => real.settle(request),
					settleClaim: (request) => real.settleClaim(request),
					holdForBatch: (request) => real.holdForBatch(request),
					lease: (request) => real.lease(request),
				};
				return { ...methods, ...broken };
			},
		}) as unknown as DurableObjectNamespace;
	const messagesRoute = (policy?: string) => [
		{ methods: ["POST"], path: "/v1/messages", max_body_bytes: 1_000_000, group: "messages", meter_tokens: true, ...(policy ? { limiter_failure: policy } : {}) },
		{ methods: ["GET"], path: "/v1/models", max_body_bytes: 0, group: "models" },
	];
	const claimsOf = async (org: string) => {
		const namespace = env.USAGE as unknown as DurableObjectNamespace<import("../src/limits/usage-object/usage-object").UsageObject>;
		return namespace.get(namespace.idFromName(org)).claimsReport();
	};

	it("answers 529 on a metered route when the usage object fails: metered routes fail closed unless told otherwise", async () => {
		const { key, overrides } = await tightOrg();
		const body = JSON.stringify({ model: "m", max_tokens: 8, messages: [{ role: "user", content: "hi" }] });
		const response = await callGuardToSink("/v1/messages", { method: "POST", body, headers: { "x-api-key": key } }, { ...overrides, USAGE: failing() as never, ROUTES: messagesRoute() });
		expect(response.status).toBe(529);
		const envelope = await readEnvelope(response);
		expect(envelope.error.type).toBe("overloaded_error");
		await expect(sinkRecord(envelope.request_id)).rejects.toThrow("no record");
	});

	it("answers 529 when the usage object says it is overloaded, even on a route that fails open", async () => {
		const { key, overrides } = await tightOrg();
		const overloaded = () => Promise.reject(Object.assign(new Error("Durable Object is overloaded"), { overloaded: true }));
		const response = await callGuardToSink(
			"/v1/models",
			{ headers: { "x-api-key": key } },
			{ ...overrides, USAGE: partlyFailing({ admit: overloaded }) as never, ROUTES: modelsRoute("open") },
		);
		expect(response.status).toBe(529);
		expect(response.headers.get("x-guard-ratelimit")).toBe("unavailable");
		await expect(sinkRecord((await readEnvelope(response)).request_id)).rejects.toThrow("no record");
	});

	it("refuses with 429 an upload whose claim cannot grow because the usage object failed, and leaves no claim outstanding", async () => {
		const { org, key, overrides } = await tightOrg();
		const exploded = () => Promise.reject(new Error("object exploded"));
		const text = JSON.stringify({ model: "m", max_tokens: 8, messages: [{ role: "user", content: "x".repeat(4000) }] });
		const { response, settled } = await startGuard(
			"/v1/messages",
			{ method: "POST", body: chunkedStream(new TextEncoder().encode(text), 1000), headers: { "x-api-key": key }, duplex: "half" } as RequestInit,
			{ ORIGIN: env.SINK, ...overrides, USAGE: partlyFailing({ grow: exploded }) as never, ROUTES: messagesRoute() },
		);
		expect(response.status).toBe(429);
		const envelope = await readEnvelope(response);
		expect(envelope.error.type).toBe("rate_limit_error");
		await settled();
		// The origin saw a failed upload, or nothing at all; never the whole body.
		const record = await sinkRecordIfAny(envelope.request_id);
		expect(record?.outcome).not.toBe("complete");
		expect(await claimsOf(org)).toMatchObject({ outstanding: 0, settled: 1 });
	});

	/** The usage object, with every growth of a claim recorded: what it asked for, whether it was admitted, what was covered before. */
	const recordingGrows = () => {
		const grows: { inputTokens: number; admitted: boolean; coveredBytes: number }[] = [];
		let covered = 0;
		const namespace = env.USAGE as unknown as DurableObjectNamespace<import("../src/limits/usage-object/usage-object").UsageObject>;
		const recording = partlyFailing({});
		const usage = {
			...recording,
			get: (id: DurableObjectId) => {
				const methods = recording.get(id) as unknown as Record<string, (request: never) => Promise<unknown>>;
				return {
					...methods,
					grow: async (request: { cost: { inputTokens: number } }) => {
						const asked = { coveredBytes: covered };
						const decision = (await namespace.get(id).grow(request as never)) as { admitted: boolean };
						if (decision.admitted) covered += request.cost.inputTokens * 4;
						grows.push({ inputTokens: request.cost.inputTokens, admitted: decision.admitted, ...asked });
						return decision;
					},
				};
			},
		};
		return { grows, usage };
	};

	it("grows a chunked body's claim in steps, and a step that does not fit neither refuses a body that does nor is charged", async () => {
		const { org, key, overrides } = await tightOrg();
		const { grows, usage: watched } = recordingGrows();
		// 79,000 bytes: 19,750 of the tight tier's 20,000 input tokens a minute.
		const head = JSON.stringify({ model: "m", max_tokens: 8, messages: [{ role: "user", content: "" }] });
		const text = head.replace('"content":""', `"content":"${"x".repeat(79_000 - head.length)}"`);
		expect(text.length).toBe(79_000);
		const started = Date.now();
		const { response, settled } = await startGuard(
			"/v1/messages",
			{ method: "POST", body: chunkedStream(new TextEncoder().encode(text), 1000), headers: { "x-api-key": key }, duplex: "half" } as RequestInit,
			{ ORIGIN: env.SINK, ...overrides, USAGE: watched as never, ROUTES: messagesRoute() },
		);
		expect(response.status).toBe(200);
		const requestId = response.headers.get("request-id") ?? "";
		await response.text();
		await settled();
		expect(await sinkRecord(requestId)).toMatchObject({ outcome: "complete", bytes: 79_000 });
		// The step that would pass the limit was refused once; from then on the body claimed exactly
		// what it read, one call a slice (not a refused step and a retry each time).
		expect(grows.filter((grow) => !grow.admitted)).toHaveLength(1);
		expect(grows.filter((grow) => grow.coveredBytes >= 64_000).length).toBeLessThanOrEqual(16);
		expect(grows.filter((grow) => grow.admitted).reduce((sum, grow) => sum + grow.inputTokens, 0)).toBeGreaterThanOrEqual(19_750);
		expect(await claimsOf(org)).toMatchObject({ outstanding: 0, settled: 1 });
		const next = await callGuardToSink("/v1/models", { headers: { "x-api-key": key } }, { ...overrides, ROUTES: messagesRoute() });
		// 250 left, plus what the bucket refilled meanwhile (20,000 a minute).
		const refilled = Math.ceil(((Date.now() - started) * 20_000) / 60_000);
		const left = Number(next.headers.get("anthropic-ratelimit-input-tokens-remaining"));
		expect(left).toBeGreaterThanOrEqual(250);
		expect(left).toBeLessThanOrEqual(250 + refilled);
	});

	it("claims a body of stated length whole at admission: reading its model past the peek asks for no input more", async () => {
		const { org, key, overrides } = await tightOrg();
		const { grows, usage } = recordingGrows();
		// 79,000 bytes of stated length, longer than the 64 KiB peek: its fields are read as it passes.
		const head = JSON.stringify({ model: "m", max_tokens: 8, messages: [{ role: "user", content: "" }] });
		const text = head.replace('"content":""', `"content":"${"x".repeat(79_000 - head.length)}"`);
		const { response, settled } = await startGuard(
			"/v1/messages",
			{ method: "POST", body: text, headers: { "x-api-key": key, "content-length": String(text.length) } },
			{ ORIGIN: env.SINK, ...overrides, USAGE: usage as never, ROUTES: messagesRoute() },
		);
		expect(response.status).toBe(200);
		await response.text();
		await settled();
		// One growth: the final claim of its output, in its model's pool; no input asked for past its length.
		expect(grows.map((grow) => grow.inputTokens)).toEqual([0]);
		expect(await claimsOf(org)).toMatchObject({ outstanding: 0, settled: 1 });
	});

	it("refuses an unknown failure policy, naming the field", async () => {
		const { response, envelope, problem } = await configProblem("/v1/models", { ROUTES: modelsRoute("sometimes") });
		expect(response.status).toBe(500);
		expect(envelope.error.message).toBe(MISCONFIGURED);
		expect(problem).toContain('ROUTES[0].limiter_failure: must be one of open, closed, local, got "sometimes"');
	});
});

describe("actual usage", () => {
	it("debits the output tokens the origin reported, from JSON and from SSE", async () => {
		const { key, overrides } = await tightOrg();
		const headers = { "x-api-key": key, "content-type": "application/json" };
		const ask = (stream: boolean) =>
			JSON.stringify({ model: "m", max_tokens: 50, stream, messages: [{ role: "user", content: "count my tokens" }] });

		// The bucket refills continuously (4000 a minute), so what comes back while the test runs is allowed for.
		const started = Date.now();
		const refilled = () => Math.ceil(((Date.now() - started) * 4000) / 60_000) + 1;
		const first = await startGuard("/v1/messages", { method: "POST", body: ask(false), headers }, overrides);
		// Admission claims max_tokens (50) of output; settlement replaces the claim with what was used.
		expect(first.response.headers.get("anthropic-ratelimit-output-tokens-remaining")).toBe("3950");
		const message = (await first.response.json()) as { usage: { output_tokens: number } };
		await first.settled();
		const spent = message.usage.output_tokens;
		expect(spent).toBeGreaterThan(0);

		const second = await startGuard("/v1/messages", { method: "POST", body: ask(true), headers }, overrides);
		const afterJson = Number(second.response.headers.get("anthropic-ratelimit-output-tokens-remaining"));
		expect(afterJson).toBeGreaterThanOrEqual(4000 - spent - 50);
		expect(afterJson).toBeLessThan(4000 - spent - 50 + refilled());
		const events = await second.response.text();
		await second.settled();
		const streamed = [...events.matchAll(/"output_tokens":(\d+)/g)].map((found) => Number(found[1])).at(-1) ?? 0;
		expect(streamed).toBeGreaterThan(0);

		const third = await callGuardToSink("/v1/models", { headers: { "x-api-key": key } }, overrides);
		const afterSse = Number(third.headers.get("anthropic-ratelimit-output-tokens-remaining"));
		expect(afterSse).toBeGreaterThanOrEqual(4000 - spent - streamed);
		expect(afterSse).toBeLessThan(4000 - spent - streamed + refilled());
	});
});

describe("usage as the API counts it", () => {
	/** A fresh organisation on a tier of its own (TOML fields), and a key for it. */
	async function orgOnTier(tier: Record<string, unknown>) {
		const org = `org_usage_${Date.now()}_${orgs++}`;
		const key = generateApiKey();
		await seedKey(env.KEYS as KVNamespace, key, { id: `key_${org}`, org_id: org });
		return { org, key, overrides: { TIERS: { ...(env.TIERS as Record<string, unknown>), own: tier }, ORG_TIERS: { [org]: "own" } } };
	}

	/** An origin answering every request with `body` as `contentType`, after reading the whole request. */
	function answering(body: string | Uint8Array, contentType: string): Fetcher {
		return {
			fetch: async (_input: RequestInfo | URL, init?: RequestInit) => {
				await new Response(init?.body ?? null).arrayBuffer();
				return new Response(body, { headers: { "content-type": contentType } });
			},
		} as unknown as Fetcher;
	}

	const ASKED = JSON.stringify({ model: "claude-sonnet-4-6", max_tokens: 50, messages: [{ role: "user", content: "x".repeat(300) }] });
	// With its length declared, as the SDKs send it: estimated at a token per 4 bytes before forwarding.
	const ESTIMATE = Math.ceil(ASKED.length / 4);
	const ask = (key: string) => ({
		method: "POST",
		headers: { "x-api-key": key, "content-type": "application/json", "content-length": String(ASKED.length) },
		body: ASKED,
	});
	const inputRemaining = (response: Response) => Number(response.headers.get("anthropic-ratelimit-input-tokens-remaining"));
	const outputRemaining = (response: Response) => Number(response.headers.get("anthropic-ratelimit-output-tokens-remaining"));
	const cached = JSON.stringify({ type: "message", model: "claude-sonnet-4-6", content: [], usage: { input_tokens: 10, cache_creation_input_tokens: 5, cache_read_input_tokens: 5000, output_tokens: 5 } });
	const TIER = { requests_per_minute: 1000, input_tokens_per_minute: 1000, output_tokens_per_minute: 100_000 };

	it("does not limit a request whose usage is mostly cache reads by them: only uncached input and cache writes count", async () => {
		const { key, overrides } = await orgOnTier(TIER);
		const env = { ...overrides, ORIGIN: answering(cached, "application/json") };
		const statuses: number[] = [];
		let last: Response | undefined;
		for (let i = 0; i < 12; i++) {
			last = await callGuard("/v1/messages", ask(key), env);
			statuses.push(last.status);
			await last.arrayBuffer();
		}
		expect(statuses).toEqual(Array(12).fill(200));
		// 11 settled requests took 15 each (10 uncached + 5 written), the 12th holds its estimate; a
		// little refills meanwhile (1000 a minute).
		const left = inputRemaining(last as Response);
		expect(left).toBeGreaterThanOrEqual(1000 - 11 * 15 - ESTIMATE);
		expect(left).toBeLessThanOrEqual(1000 - 11 * 15 - ESTIMATE + 20);
	});

	it("counts cache reads toward input tokens where the tier says the API does", async () => {
		const { key, overrides } = await orgOnTier({ ...TIER, count_cache_reads: true });
		const env = { ...overrides, ORIGIN: answering(cached, "application/json") };
		const first = await callGuard("/v1/messages", ask(key), env);
		expect(first.status).toBe(200);
		await first.arrayBuffer();
		const second = await callGuard("/v1/messages", ask(key), env);
		expect(second.status).toBe(429);
		expect((await readEnvelope(second)).error.message).toContain("input tokens per minute");
	});

	it("charges the output of a 2 MiB JSON answer", async () => {
		const { key, overrides } = await orgOnTier({ ...TIER, input_tokens_per_minute: 100_000, output_tokens_per_minute: 4000 });
		const big = JSON.stringify({ type: "message", model: "claude-sonnet-4-6", content: [{ type: "text", text: "w".repeat(2 * 1024 * 1024) }], usage: { input_tokens: 10, output_tokens: 1500 } });
		const first = await callGuard("/v1/messages", ask(key), { ...overrides, ORIGIN: answering(big, "application/json") });
		expect((await first.text()).length).toBe(big.length);
		const next = await callGuard("/v1/models", { headers: { "x-api-key": key } }, overrides);
		expect(outputRemaining(next)).toBeLessThanOrEqual(4000 - 1500 + 100);
	});

	it("charges the output of an event stream framed with CR alone", async () => {
		const { key, overrides } = await orgOnTier({ ...TIER, input_tokens_per_minute: 100_000, output_tokens_per_minute: 4000 });
		const events = [
			'event: message_start\rdata: {"type":"message_start","message":{"model":"claude-sonnet-4-6","usage":{"input_tokens":10,"output_tokens":1}}}\r\r',
			'event: message_delta\rdata: {"type":"message_delta","delta":{},"usage":{"output_tokens":1200}}\r\r',
			'event: message_stop\rdata: {"type":"message_stop"}\r\r',
		].join("");
		const first = await callGuard("/v1/messages", ask(key), { ...overrides, ORIGIN: answering(events, "text/event-stream") });
		expect(await first.text()).toBe(events);
		const next = await callGuard("/v1/models", { headers: { "x-api-key": key } }, overrides);
		expect(outputRemaining(next)).toBeLessThanOrEqual(4000 - 1200 + 100);
	});
});

describe("anthropic-organization-id", () => {
	it("is on every answer to an identified request, success or refusal, and on no other", async () => {
		const { key, overrides } = await tightOrg();
		const org = Object.keys(overrides.ORG_TIERS)[0];
		const oversized = new Request("https://guard.test/v1/messages", { method: "POST", body: "{}", headers: { "x-api-key": key, "content-type": "application/json" } });
		oversized.headers.set("content-length", "33554433");
		const tooLarge = await callGuardToSink(oversized, undefined, overrides);
		expect(tooLarge.status).toBe(413);
		expect(tooLarge.headers.get("anthropic-organization-id")).toBe(org);
		const answers: Response[] = [];
		for (let i = 0; i < 11; i++) answers.push(await callGuardToSink("/v1/models", { headers: { "x-api-key": key } }, overrides));
		expect(answers.map((answer) => answer.status)).toEqual([...Array(10).fill(200), 429]);
		for (const answer of answers) expect(answer.headers.get("anthropic-organization-id")).toBe(org);
		const anonymous = await callGuardToSink("/v1/models", { headers: { "x-api-key": "" } }, overrides);
		expect(anonymous.status).toBe(401);
		expect(anonymous.headers.get("anthropic-organization-id")).toBeNull();
	});
});

describe("lease mode on the request path", () => {
	function countingUsage() {
		const inner = env.USAGE as unknown as DurableObjectNamespace;
		let calls = 0;
		const namespace = {
			idFromName: (name: string) => inner.idFromName(name),
			get: (id: DurableObjectId) => {
				const stub = inner.get(id) as unknown as Record<"admit" | "settle" | "lease", (request: unknown) => Promise<unknown>>;
				const counted = (method: "admit" | "settle" | "lease") => (request: unknown) => {
					calls++;
					return stub[method](request);
				};
				return { admit: counted("admit"), settle: counted("settle"), lease: counted("lease") };
			},
		};
		return { namespace: namespace as unknown as never, calls: () => calls };
	}

	async function hotOrg(mode: string, requests: number) {
		const org = `org_hot_${mode}_${Date.now()}`;
		const key = generateApiKey();
		await seedKey(env.KEYS as KVNamespace, key, { id: `key_${org}`, org_id: org });
		const usage = countingUsage();
		const statuses = new Set<number>();
		for (let i = 0; i < requests; i++) {
			const response = await callGuardToSink("/v1/models", { headers: { "x-api-key": key } }, { LIMITER_MODE: mode, USAGE: usage.namespace });
			statuses.add(response.status);
			expect(response.headers.get("x-guard-ratelimit")).toBeNull();
			// Read like a client: a response not yet taken counts as in flight (OVERLOAD's org share).
			await response.arrayBuffer();
		}
		return { calls: usage.calls(), statuses: [...statuses] };
	}

	it("calls the usage object once per request in exact mode", async () => {
		const exact = await hotOrg("exact", 20);
		expect(exact.statuses).toEqual([200]);
		expect(exact.calls).toBe(20);
	});

	it("calls it fewer than 0.1 times per request for a hot organisation in lease mode", async () => {
		const lease = await hotOrg("lease", 200);
		expect(lease.statuses).toEqual([200]);
		expect(lease.calls).toBeLessThan(20);
	});
});
