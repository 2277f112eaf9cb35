import Anthropic from "@anthropic-ai/sdk";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { createKey, freshOrg, orgView } from "./accounting-kit";
import { type LocalServer, startLocalServer } from "./local-server";
import { runNode } from "./run-node";

const ROOT = resolve(__dirname, "../..");
const REQUEST_ID = /^req_[0-9A-Za-z]{24}$/;
/** The organisation whose budget the test spends: its own (fresh: local state persists), on the demo's `budget` tier. */
const BUDGET_ORG = freshOrg("budget_e2e");
let server: LocalServer;

beforeAll(async () => {
	const { workerOptions } = unstable_getMiniflareWorkerOptions(resolve(ROOT, "wrangler.toml"));
	const orgTiers = { ...(workerOptions.bindings?.ORG_TIERS as Record<string, string>), [BUDGET_ORG]: "budget" };
	server = await startLocalServer(["--var", `ORG_TIERS=${JSON.stringify(orgTiers)}`]);
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
		const client = new Anthropic({ apiKey: await createKey(server, BUDGET_ORG, ["messages"]), baseURL: server.url, fetch: counting });
		// The budget tier allows seven "Hello"s a UTC day (each claims $0.001029 of a $0.0024 budget
		// and costs $0.000207: after seven, $0.001449 spent leaves less than a claim); the eighth is refused.
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
		expect(admitted).toBe(7);
		expect(error).toBeInstanceOf(Anthropic.RateLimitError);
		const typed = error as InstanceType<typeof Anthropic.RateLimitError>;
		expect(typed.requestID).toMatch(REQUEST_ID);
		expect(typed.message).toMatch(/This request could cost up to \$0\.001029 \(its input estimate and max_tokens at the model's prices\), more than the \$0\.000\d+ left of your organization's daily spend budget of \$0\.0024/);
		expect(typed.headers?.get("x-should-retry")).toBe("false");
		expect(typed.headers?.get("retry-after")).toBeNull();
		expect(typed.headers?.get("retry-after-ms")).toBeNull();
		expect(typed.headers?.get("anthropic-organization-id")).toBe(BUDGET_ORG);

		const usage = await runNode(["scripts/keys.mjs", "usage", "--org", BUDGET_ORG], {
			cwd: ROOT,
			env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
		});
		expect(usage.status, usage.stderr).toBe(0);
		// What was settled, never the claims: seven costs, less than a claim left of the day's budget.
		// npm run keys reads the tiers from wrangler.toml, where this organisation has none of its own,
		// so the budgets are read from the running guard's admin API.
		expect(usage.stdout).toMatch(/organization\s+day\s+spent \$0\.001449\s/);
		expect(usage.stdout).toMatch(/organization\s+month\s+spent \$0\.001449\s/);
		expect(usage.stdout).toMatch(/key key_\w+\s+day\s+spent \$0\.001449\s/);
		const { spend } = await orgView(server, BUDGET_ORG);
		expect(spend).toMatchObject([
			{ period: "day", spent_usd: 0.001449, budget_usd: 0.0024 },
			{ period: "month", spent_usd: 0.001449, budget_usd: 1 },
		]);
	});
});
