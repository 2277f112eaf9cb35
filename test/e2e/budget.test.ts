import Anthropic from "@anthropic-ai/sdk";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalServer, startLocalServer } from "./local-server";
import { runNode } from "./run-node";

const ROOT = resolve(__dirname, "../..");
const REQUEST_ID = /^req_[0-9A-Za-z]{24}$/;
let server: LocalServer;

beforeAll(async () => {
	server = await startLocalServer();
});

afterAll(async () => {
	await server?.stop();
});

describe("the money 429 against npm start's server", () => {
	it("reaches the official SDK as RateLimitError, which does not retry it, and keys usage shows the budget spent", async () => {
		let calls = 0;
		const counting: typeof fetch = (input, init) => {
			calls++;
			return fetch(input, init);
		};
		// The default maxRetries (2): a retryable 429 would reach the server three times.
		const client = new Anthropic({ apiKey: "sk-demo-budget", baseURL: server.url, fetch: counting });
		// sk-demo-budget's organisation may seven "Hello"s a UTC day (each claims $0.001029 of a
		// $0.0024 budget and costs $0.000207); whatever an earlier run spent today, one is refused.
		let error: unknown;
		let admitted = 0;
		for (let i = 0; i < 9 && error === undefined; i++) {
			const before = calls;
			error = await client.messages.create({ model: "claude-sonnet-4-6", max_tokens: 64, messages: [{ role: "user", content: "Hello" }] }).then(
				() => {
					admitted++;
					return undefined;
				},
				(caught: unknown) => {
					// The refused call reached the server exactly once.
					expect(calls - before).toBe(1);
					return caught;
				},
			);
		}
		expect(admitted).toBeLessThanOrEqual(7);
		expect(error).toBeInstanceOf(Anthropic.RateLimitError);
		const typed = error as InstanceType<typeof Anthropic.RateLimitError>;
		expect(typed.requestID).toMatch(REQUEST_ID);
		expect(typed.message).toMatch(/This request could cost up to \$0\.001029 \(its input estimate and max_tokens at the model's prices\), more than the \$0\.000\d+ left of your organization's daily spend budget of \$0\.0024/);
		expect(typed.headers?.get("x-should-retry")).toBe("false");
		expect(typed.headers?.get("retry-after")).toBeNull();
		expect(typed.headers?.get("retry-after-ms")).toBeNull();
		expect(typed.headers?.get("anthropic-organization-id")).toBe("org_budget");

		const usage = await runNode(["scripts/keys.mjs", "usage", "--org", "org_budget"], {
			cwd: ROOT,
			env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
		});
		expect(usage.status, usage.stderr).toBe(0);
		// What was settled, never the claims: less than a claim is left, and the budget is not spent.
		expect(usage.stdout).toMatch(/organization\s+day\s+spent \$0\.00\d+\s+budget \$0\.0024, remaining \$0\.000\d+;/);
		expect(usage.stdout).toMatch(/organization\s+month\s+spent \$0\.00\d+\s+budget \$1\.00, remaining \$0\.99\d+/);
		expect(usage.stdout).toContain("key key_demo_budget");
	});
});
