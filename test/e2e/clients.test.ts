import { createAnthropic } from "@ai-sdk/anthropic";
import Anthropic from "@anthropic-ai/sdk";
import { ChatAnthropic } from "@langchain/anthropic";
import { APICallError, generateText, streamText } from "ai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKey, freshOrg } from "./accounting-kit";
import { startWranglerDev, type WranglerDev } from "./clients-wrangler-dev";
import { type LocalServer, startLocalServer } from "./local-server";

const REQUEST_ID = /^req_[0-9A-Za-z]{24}$/;
const KEY = "sk-demo-key";
/** The 429 test's organisation, its own (fresh: local state persists), on the tight tier. */
const TIGHT_ORG = freshOrg("clients_429");
/** The tight tier refilling one request a second, so a 429's hint is under a second. */
const FAST_TIGHT_TIER = { requests_per_minute: 60, input_tokens_per_minute: 20_000, output_tokens_per_minute: 4_000 };
const DEFAULT_TIER = {
	requests_per_minute: 10_000,
	input_tokens_per_minute: 200_000_000,
	output_tokens_per_minute: 2_000_000,
	acceleration: { window_seconds: 60, multiple: 4, floor_per_minute: 5_000, baseline_minutes: 30 },
};
/** The AI SDK's own first backoff when a response has no usable retry hint. */
const AI_SDK_FIRST_BACKOFF_MS = 2_000;

interface Exchange {
	readonly method: string;
	readonly url: string;
	readonly body: unknown;
	readonly status: number;
	readonly headers: Headers;
	/** When the response headers arrived, from performance.now(). */
	readonly at: number;
}

let server: LocalServer;

beforeAll(async () => {
	server = await startLocalServer([
		"--var",
		`TIERS=${JSON.stringify({ default: DEFAULT_TIER, tight: FAST_TIGHT_TIER })}`,
		"--var",
		`ORG_TIERS=${JSON.stringify({ org_demo: "default", org_tight: "tight", [TIGHT_ORG]: "tight" })}`,
	]);
});

afterAll(async () => {
	await server?.stop();
});

/** A fetch that records every exchange a client makes, for assertions on what went over the wire. */
function recordingFetch(into: Exchange[]): typeof fetch {
	return async (input, init) => {
		const request = new Request(input, init);
		const text = request.body === null ? "" : await request.clone().text();
		const response = await fetch(request);
		into.push({
			method: request.method,
			url: request.url,
			body: text === "" ? undefined : JSON.parse(text),
			status: response.status,
			headers: response.headers,
			at: performance.now(),
		});
		return response;
	};
}

function aiSdk(apiKey = KEY, exchanges: Exchange[] = []) {
	return createAnthropic({ baseURL: `${server.url}/v1`, apiKey, fetch: recordingFetch(exchanges) });
}

describe("the Vercel AI SDK (ai with @ai-sdk/anthropic) through the guard", () => {
	it("generates text from a non-streaming message (no 'Invalid JSON response' on the demo's text blocks)", async () => {
		const exchanges: Exchange[] = [];
		const result = await generateText({
			model: aiSdk(KEY, exchanges)("claude-sonnet-4-6"),
			prompt: "Hello from the AI SDK",
			maxOutputTokens: 64,
			maxRetries: 0,
		});
		expect(result.text).toContain("Hello from the AI SDK");
		expect(result.finishReason).toBe("stop");
		expect(result.usage.outputTokens).toBeGreaterThan(0);
		expect(result.response.headers?.["request-id"]).toMatch(REQUEST_ID);
		expect(exchanges.map((e) => `${e.method} ${new URL(e.url).pathname} ${e.status}`)).toEqual(["POST /v1/messages 200"]);
	});

	it("streams text, delta by delta, with its usage and finish reason", async () => {
		const result = streamText({ model: aiSdk()("claude-sonnet-4-6"), prompt: "Stream through the guard", maxOutputTokens: 64, maxRetries: 0 });
		const deltas: string[] = [];
		for await (const delta of result.textStream) deltas.push(delta);
		expect(deltas.length).toBeGreaterThanOrEqual(3);
		expect(deltas.join("")).toContain("Stream through the guard");
		expect(await result.finishReason).toBe("stop");
		expect((await result.usage).outputTokens).toBeGreaterThan(0);
	});

	it("raises APICallError with status 401 and the guard's envelope for an unknown key, without retrying", async () => {
		const exchanges: Exchange[] = [];
		const error = await generateText({
			model: aiSdk("sk-guard-NotAKeyAnyoneHas000000000000000000000", exchanges)("claude-sonnet-4-6"),
			prompt: "Who am I?",
			maxOutputTokens: 64,
		}).catch((caught: unknown) => caught);
		expect(APICallError.isInstance(error)).toBe(true);
		const typed = error as APICallError;
		expect(typed.statusCode).toBe(401);
		expect(typed.isRetryable).toBe(false);
		expect(typed.message).toContain("invalid x-api-key");
		expect(typed.responseHeaders?.["request-id"]).toMatch(REQUEST_ID);
		expect(exchanges).toHaveLength(1);
	});

	it("retries a 429 after the guard's retry-after-ms, not its own backoff, and then succeeds", async () => {
		// Spend the requests of an organisation of this test's own until one is refused, then ask at once. The tier refills within a second, so on a busy machine the ask
		// can come after a unit refilled and be admitted outright: then the organisation is drained
		// again and the ask repeated (at most three times), never the assertions loosened.
		const tightKey = await createKey(server, TIGHT_ORG, ["models", "messages"]);
		let exchanges: Exchange[] = [];
		let result: Awaited<ReturnType<typeof generateText>> | undefined;
		for (let attempt = 0; attempt < 3 && exchanges[0]?.status !== 429; attempt++) {
			let refused = false;
			for (let i = 0; i < FAST_TIGHT_TIER.requests_per_minute + 5 && !refused; i++) {
				const response = await fetch(`${server.url}/v1/models`, { headers: { "x-api-key": tightKey, "anthropic-version": "2023-06-01" } });
				await response.arrayBuffer();
				refused = response.status === 429;
			}
			expect(refused).toBe(true);
			exchanges = [];
			result = await generateText({
				model: aiSdk(tightKey, exchanges)("claude-sonnet-4-6"),
				prompt: "Retry me",
				maxOutputTokens: 64,
				maxRetries: 2,
			});
		}
		expect(result?.text).toContain("Retry me");
		expect(exchanges.map((e) => e.status)).toEqual([429, 200]);
		const [limited, retried] = exchanges as [Exchange, Exchange];
		const hintMs = Number(limited.headers.get("retry-after-ms"));
		expect(hintMs).toBeGreaterThan(0);
		expect(hintMs).toBeLessThanOrEqual(1_000);
		expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(hintMs / 1000);
		const waitedMs = retried.at - limited.at;
		// Timers may fire a millisecond early relative to performance.now().
		expect(waitedMs).toBeGreaterThanOrEqual(hintMs - 2);
		expect(waitedMs).toBeLessThan(AI_SDK_FIRST_BACKOFF_MS);
	});

	it("surfaces a stream that breaks mid-way as an error part carrying the guard's api_error, after the text so far", async () => {
		const result = streamText({
			model: aiSdk()("claude-sonnet-4-6"),
			prompt: "Break, please",
			maxOutputTokens: 64,
			maxRetries: 0,
			headers: { "x-demo-fault": "stream-abort" },
			onError: () => undefined,
		});
		const parts: { type: string; error?: unknown; text?: string }[] = [];
		for await (const part of result.fullStream) parts.push(part as (typeof parts)[number]);
		const text = parts.filter((part) => part.type === "text-delta").map((part) => part.text ?? "");
		expect(text.join("")).not.toBe("");
		const errors = parts.filter((part) => part.type === "error");
		expect(errors).toHaveLength(1);
		expect(errors[0]?.error).toMatchObject({ type: "api_error" });
		expect(parts.some((part) => part.type === "finish" && (part as { finishReason?: string }).finishReason === "stop")).toBe(false);
	});

	it("runs a bare generateText({ model, prompt }), which sends claude-sonnet-5-5's default max_tokens of 128000 without streaming", async () => {
		const exchanges: Exchange[] = [];
		const result = await generateText({ model: aiSdk(KEY, exchanges)("claude-sonnet-5-5"), prompt: "No options at all", maxRetries: 0 });
		expect(result.text).toContain("No options at all");
		const sent = exchanges[0]?.body as { model?: string; max_tokens?: number; stream?: boolean } | undefined;
		expect(sent).toMatchObject({ model: "claude-sonnet-5-5", max_tokens: 128_000 });
		expect(sent?.stream).not.toBe(true);
	});
});

describe("LangChain (@langchain/anthropic) through the guard", () => {
	function chat(): ChatAnthropic {
		return new ChatAnthropic({ model: "claude-sonnet-4-6", apiKey: KEY, anthropicApiUrl: server.url, maxRetries: 0, maxTokens: 64 });
	}

	it("invokes a chat model and reads the reply, its usage and the message ID", async () => {
		const reply = await chat().invoke("Hello from LangChain");
		expect(reply.content).toContain("Hello from LangChain");
		expect(reply.usage_metadata?.output_tokens).toBeGreaterThan(0);
		expect(reply.response_metadata.id).toMatch(/^msg_/);
	});

	it("streams a chat model's reply chunk by chunk", async () => {
		const chunks: string[] = [];
		for await (const chunk of await chat().stream("Stream from LangChain")) {
			if (typeof chunk.content === "string" && chunk.content !== "") chunks.push(chunk.content);
		}
		expect(chunks.length).toBeGreaterThanOrEqual(3);
		expect(chunks.join("")).toContain("Stream from LangChain");
	});
});

describe("npx wrangler dev -c wrangler.toml -c demo-origin/wrangler.toml", () => {
	let dev: WranglerDev;

	// The demo keys are in the project's local state: this file's npm start server seeded them.
	beforeAll(async () => {
		dev = await startWranglerDev();
	});

	afterAll(async () => {
		await dev?.stop();
	});

	it("serves the guard in front of the demo origin: a message and a stream with the official SDK", async () => {
		const client = new Anthropic({ apiKey: KEY, baseURL: dev.url, maxRetries: 0 });
		const message = await client.messages.create({ model: "claude-demo", max_tokens: 64, messages: [{ role: "user", content: "Hello, wrangler dev" }] });
		expect(message.content[0]).toEqual({ type: "text", text: expect.stringContaining("Hello, wrangler dev") });
		expect(message._request_id).toMatch(REQUEST_ID);
		const streamed = await client.messages.stream({ model: "claude-demo", max_tokens: 64, messages: [{ role: "user", content: "Stream" }] }).finalMessage();
		expect(streamed.stop_reason).toBe("end_turn");
	});

	it("serves the AI SDK's generateText and refuses an unknown key with the guard's 401", async () => {
		const anthropic = createAnthropic({ baseURL: `${dev.url}/v1`, apiKey: KEY });
		const result = await generateText({ model: anthropic("claude-sonnet-4-6"), prompt: "AI SDK via wrangler dev", maxOutputTokens: 64, maxRetries: 0 });
		expect(result.text).toContain("AI SDK via wrangler dev");
		const stranger = new Anthropic({ apiKey: "sk-guard-NotAKeyAnyoneHas000000000000000000000", baseURL: dev.url, maxRetries: 0 });
		const error = await stranger.models.list().catch((caught: unknown) => caught);
		expect(error).toBeInstanceOf(Anthropic.AuthenticationError);
	});
});
