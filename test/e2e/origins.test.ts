// Issue 23: a route with two origins behind `npm start`, each a recording origin the test switches
// between answering, refusing connections, 529, silence and a stream cut after its first event.
import Anthropic from "@anthropic-ai/sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_HEADERS, costNanos, createKey, expectSettled, freshOrg, price, stackArgs, until } from "./accounting-kit";
import { type LocalServer, startLocalServer } from "./local-server";
import { REPORTED, type SwitchableOrigin, startSwitchableOrigin } from "./origins-kit";

const PRICE = price(1, 5);
const ROOMY = { requests_per_minute: 5000, input_tokens_per_minute: 10_000_000, output_tokens_per_minute: 1_000_000, price: PRICE };
/** What one message answer of the origins costs: charged once however many origins were tried. */
const ONE_ANSWER = costNanos(REPORTED, PRICE);
const VERSION = { "anthropic-version": "2023-06-01" };

interface Attempt {
	origin: string;
	outcome: string;
	status?: number;
	ms: number;
	not_retried?: string;
}

/** The `decisions.attempts` of the request's log line, once the server printed it. */
async function attemptsOf(server: LocalServer, requestId: string): Promise<Attempt[]> {
	return until(() => {
		for (const text of server.output().split("\n")) {
			if (!text.includes(requestId) || !text.startsWith("{")) continue;
			const line = JSON.parse(text) as { request_id?: string; decisions?: { attempts?: Attempt[] } };
			if (line.request_id === requestId && line.decisions?.attempts !== undefined) return line.decisions.attempts;
		}
		return undefined;
	}, `the log line of ${requestId}`, 5000);
}

function message(extra: Record<string, unknown> = {}): string {
	return JSON.stringify({ model: "claude-test-1", max_tokens: 16, messages: [{ role: "user", content: "hi" }], ...extra });
}

async function post(server: LocalServer, key: string, body: string | Uint8Array): Promise<{ status: number; requestId: string; text: string }> {
	const response = await fetch(`${server.url}/v1/messages`, { method: "POST", headers: { "x-api-key": key, "content-type": "application/json", ...VERSION }, body: typeof body === "string" ? body : new Uint8Array(body) });
	return { status: response.status, requestId: response.headers.get("request-id") ?? "", text: await response.text() };
}

describe("two origins in front of messages and models, failing over before the first byte", () => {
	const orgs = { refuse: "", overloaded: "", silent: "", upload: "", stream: "", sdk: "", weights: "" };
	const keys: Record<string, string> = {};
	let server: LocalServer;
	let first: SwitchableOrigin;
	let second: SwitchableOrigin;

	beforeAll(async () => {
		first = await startSwitchableOrigin();
		second = await startSwitchableOrigin();
		for (const name of Object.keys(orgs) as (keyof typeof orgs)[]) orgs[name] = freshOrg(`origins_${name}`);
		const args = stackArgs({
			origin: first.url,
			tiers: { origins_test: ROOMY },
			orgs: Object.fromEntries(Object.values(orgs).map((org) => [org, "origins_test"])),
			routes: {
				"messages.create": { origins: [{ url: first.url, priority: 1 }, { url: second.url, priority: 2 }], connect_timeout_seconds: 2 },
				"models.list": { origins: [{ url: first.url, priority: 1, weight: 3 }, { url: second.url, priority: 1, weight: 1 }] },
			},
		});
		// Breakers that a few failures cannot open: these tests are about the retries, not the breaker.
		server = await startLocalServer([...args, "--var", 'OVERLOAD={"breaker":{"failures":1000,"min_requests":100000}}']);
		for (const [name, org] of Object.entries(orgs)) keys[name] = await createKey(server, org, ["messages", "models"]);
	}, 120_000);

	afterEach(async () => {
		await first.setMode("ok");
		await second.setMode("ok");
		first.clear();
		second.clear();
	});

	afterAll(async () => {
		await server?.stop();
		await first?.stop();
		await second?.stop();
	});

	it("answers a message from the second origin when the first refuses connections, charged once", async () => {
		await first.setMode("refuse");
		const answer = await post(server, keys.refuse as string, message());
		expect(answer.status, answer.text).toBe(200);
		expect(first.records).toHaveLength(0);
		expect(second.records.map((record) => [record.attempt, record.requestId])).toEqual([["2", answer.requestId]]);
		const attempts = await attemptsOf(server, answer.requestId);
		expect(attempts.map((attempt) => [attempt.origin, attempt.outcome])).toEqual([
			[first.url, "unreachable"],
			[second.url, "answered"],
		]);
		await expectSettled(server, orgs.refuse, { settled: 1, chargedNanos: ONE_ANSWER });
	});

	it("answers a message from the second origin when the first answers 529, the same body and request-id to both, charged once", async () => {
		await first.setMode("529");
		const body = message();
		const answer = await post(server, keys.overloaded as string, body);
		expect(answer.status, answer.text).toBe(200);
		expect(JSON.parse(answer.text)).toMatchObject({ id: "msg_origins", usage: REPORTED });
		expect(first.records.map((record) => [record.attempt, record.requestId, record.bodyBytes])).toEqual([["1", answer.requestId, body.length]]);
		expect(second.records.map((record) => [record.attempt, record.requestId, record.bodyBytes])).toEqual([["2", answer.requestId, body.length]]);
		const attempts = await attemptsOf(server, answer.requestId);
		expect(attempts.map((attempt) => [attempt.outcome, attempt.status])).toEqual([
			["retryable-status", 529],
			["answered", 200],
		]);
		await expectSettled(server, orgs.overloaded, { settled: 1, chargedNanos: ONE_ANSWER });
	});

	it("answers a message from the second origin when the first sends no headers within connect_timeout_seconds (2), charged once", async () => {
		await first.setMode("silent");
		const started = Date.now();
		const answer = await post(server, keys.silent as string, message());
		expect(answer.status, answer.text).toBe(200);
		expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
		expect(second.records.map((record) => record.attempt)).toEqual(["2"]);
		// The silent origin's request was given up, not left open.
		await first.waitFor(() => first.records[0]?.responseOutcome === "cut", "the guard abandon the silent attempt");
		const attempts = await attemptsOf(server, answer.requestId);
		expect(attempts.map((attempt) => attempt.outcome)).toEqual(["no-headers", "answered"]);
		await expectSettled(server, orgs.silent, { settled: 1, chargedNanos: ONE_ANSWER });
	});

	it("does not retry a 2 MiB upload (over replay_max_bytes, 1 MiB): the first origin's 529 is the answer, and the log says why", async () => {
		await first.setMode("529");
		const content = "a ".repeat(1024 * 1024);
		const body = Buffer.from(message({ messages: [{ role: "user", content }] }));
		expect(body.byteLength).toBeGreaterThan(2 * 1024 * 1024);
		const answer = await post(server, keys.upload as string, body);
		expect(answer.status).toBe(529);
		expect(JSON.parse(answer.text)).toMatchObject({ type: "error", error: { type: "overloaded_error" }, request_id: answer.requestId });
		expect(first.records.map((record) => record.bodyBytes)).toEqual([body.byteLength]);
		expect(second.records).toHaveLength(0);
		expect(await attemptsOf(server, answer.requestId)).toEqual([
			{ origin: first.url, outcome: "retryable-status", status: 529, ms: expect.any(Number), not_retried: "body-over-replay-max" },
		]);
		await expectSettled(server, orgs.upload, { settled: 1 });
	});

	it("gives a stream cut after its first event the SSE error event, and does not retry it", async () => {
		await first.setMode("sse-cut");
		const response = await fetch(`${server.url}/v1/messages`, {
			method: "POST",
			headers: { "x-api-key": keys.stream as string, "content-type": "application/json", ...VERSION },
			body: message({ stream: true }),
		});
		expect(response.status).toBe(200);
		const text = await response.text();
		expect(text).toContain("event: message_start");
		expect(text).toMatch(/event: error\ndata: \{"type":"error","error":\{"type":"api_error"/);
		expect(first.records).toHaveLength(1);
		expect(second.records).toHaveLength(0);
		const requestId = response.headers.get("request-id") ?? "";
		expect((await attemptsOf(server, requestId)).map((attempt) => [attempt.origin, attempt.outcome])).toEqual([[first.url, "answered"]]);
		await expectSettled(server, orgs.stream, { settled: 1 });
	});

	it("shows the official SDK one successful call where the first origin answered 529", async () => {
		await first.setMode("529");
		const client = new Anthropic({ apiKey: keys.sdk as string, baseURL: server.url, maxRetries: 0 });
		const { data, response } = await client.messages.create({ model: "claude-test-1", max_tokens: 16, messages: [{ role: "user", content: "hi" }] }).withResponse();
		expect(data.content).toEqual([{ type: "text", text: "ok" }]);
		const requestId = response.headers.get("request-id");
		expect(first.records.map((record) => [record.attempt, record.requestId])).toEqual([["1", requestId]]);
		expect(second.records.map((record) => [record.attempt, record.requestId])).toEqual([["2", requestId]]);
		await expectSettled(server, orgs.sdk, { settled: 1, chargedNanos: ONE_ANSWER });
	});

	it("sends 3:1 weighted origins of one priority 3:1 over 1,000 requests (the first within 750 ± 60, 4.4 standard deviations)", async () => {
		const headers = { "x-api-key": keys.weights as string, ...VERSION };
		let next = 0;
		const statuses: number[] = [];
		// Twenty clients at a time: fast enough, and far below the in-flight bounds.
		await Promise.all(
			Array.from({ length: 20 }, async () => {
				while (next < 1000) {
					next++;
					const response = await fetch(`${server.url}/v1/models`, { headers });
					await response.arrayBuffer();
					statuses.push(response.status);
				}
			}),
		);
		expect(statuses.filter((status) => status === 200)).toHaveLength(1000);
		expect(first.records.length + second.records.length).toBe(1000);
		expect(Math.abs(first.records.length - 750)).toBeLessThanOrEqual(60);
		expect([...first.records, ...second.records].every((record) => record.attempt === "1")).toBe(true);
	}, 180_000);
});

interface BreakerView {
	origin: string;
	state: string;
	recent: { requests: number; failures: number; failure_rate: number | null };
}

describe("each origin's breaker, on its own", () => {
	let server: LocalServer;
	let left: SwitchableOrigin;
	let right: SwitchableOrigin;
	let key: string;
	let tried = 0;

	async function breakers(): Promise<Record<string, BreakerView>> {
		const response = await fetch(`${server.url}/_guard/api/health`, { headers: ADMIN_HEADERS });
		const body = (await response.json()) as { isolate: { breakers: BreakerView[] } };
		return Object.fromEntries(body.isolate.breakers.map((breaker) => [breaker.origin, breaker]));
	}

	/** Lists files until `origin`'s breaker is in `state` (bounded); every answer must be a 200. */
	async function untilBreaker(origin: SwitchableOrigin, state: string): Promise<Record<string, BreakerView>> {
		return until(async () => {
			const response = await fetch(`${server.url}/v1/files`, { headers: { "x-api-key": key, ...VERSION } });
			await response.arrayBuffer();
			expect(response.status).toBe(200);
			tried++;
			const now = await breakers();
			return now[origin.url]?.state === state ? now : undefined;
		}, `${origin.url}'s breaker turning ${state}`, 20_000);
	}

	beforeAll(async () => {
		left = await startSwitchableOrigin();
		right = await startSwitchableOrigin();
		const org = freshOrg("origins_breakers");
		const args = stackArgs({
			origin: left.url,
			tiers: { origins_test: ROOMY },
			orgs: { [org]: "origins_test" },
			routes: { "files.list": { origins: [{ url: left.url }, { url: right.url }] } },
		});
		const overload = { breaker: { failures: 3, min_requests: 3, failure_rate: 0.5, window_seconds: 10, cooldown_seconds: 5, probes: 1 } };
		server = await startLocalServer([...args, "--var", `OVERLOAD=${JSON.stringify(overload)}`]);
		key = await createKey(server, org, ["files"]);
	}, 120_000);

	afterAll(async () => {
		await server?.stop();
		await left?.stop();
		await right?.stop();
	});

	it("opens the failing origin's breaker while the other stays closed and serves, then closes it once the origin recovers; and the same the other way round", async () => {
		await left.setMode("503");
		let seen = await untilBreaker(left, "open");
		expect(seen[right.url]?.state).toBe("closed");
		expect(seen[right.url]?.recent.failures).toBe(0);
		expect(seen[left.url]?.recent.failure_rate).toBe(1);
		// While it is open (a 5-second cooldown), nothing is sent to it.
		const before = left.records.length;
		for (let i = 0; i < 3; i++) {
			const response = await fetch(`${server.url}/v1/files`, { headers: { "x-api-key": key, ...VERSION } });
			await response.arrayBuffer();
			expect(response.status).toBe(200);
		}
		expect(left.records.length).toBe(before);

		await left.setMode("ok");
		seen = await untilBreaker(left, "closed");
		expect(seen[right.url]?.state).toBe("closed");

		await right.setMode("503");
		seen = await untilBreaker(right, "open");
		expect(seen[left.url]?.state).toBe("closed");
		await right.setMode("ok");
		seen = await untilBreaker(right, "closed");
		expect(seen[left.url]?.state).toBe("closed");
		expect(tried).toBeGreaterThan(0);
	}, 90_000);

	it("answers 529 only when both are open, retry-after the soonest half-open time, sending nothing to either", async () => {
		await left.setMode("503");
		await right.setMode("503");
		const refused = await until(async () => {
			const sent = left.records.length + right.records.length;
			const response = await fetch(`${server.url}/v1/files`, { headers: { "x-api-key": key, ...VERSION } });
			const text = await response.text();
			const view = await breakers();
			const bothOpen = view[left.url]?.state === "open" && view[right.url]?.state === "open";
			return response.status === 529 ? { text, retryAfter: Number(response.headers.get("retry-after")), reached: left.records.length + right.records.length - sent, bothOpen } : undefined;
		}, "a 529 with both breakers open", 30_000);
		expect(JSON.parse(refused.text)).toMatchObject({ type: "error", error: { type: "overloaded_error", message: expect.stringContaining("Every upstream service") } });
		expect(refused.reached).toBe(0);
		expect(refused.bothOpen).toBe(true);
		// The soonest of the two half-open times: within the 5-second cooldown, floored at retry_after_seconds (1).
		expect(refused.retryAfter).toBeGreaterThanOrEqual(1);
		expect(refused.retryAfter).toBeLessThanOrEqual(5);
		await left.setMode("ok");
		await right.setMode("ok");
	}, 60_000);
});

describe("npm start -- --origins 2", () => {
	let server: LocalServer;
	let key: string;

	beforeAll(async () => {
		server = await startLocalServer(["--origins", "2"]);
		key = await createKey(server, freshOrg("origins_demo"), ["messages"]);
	}, 120_000);

	afterAll(async () => {
		await server?.stop();
	});

	async function demoMessage(faultHeaders: Record<string, string>) {
		const response = await fetch(`${server.url}/v1/messages`, {
			method: "POST",
			headers: { "x-api-key": key, "content-type": "application/json", ...VERSION, ...faultHeaders },
			body: JSON.stringify({ model: "claude-sonnet-4-5", max_tokens: 16, messages: [{ role: "user", content: "hi" }] }),
		});
		const text = await response.text();
		const requestId = response.headers.get("request-id") ?? "";
		return { status: response.status, text, attempts: (await attemptsOf(server, requestId)).map((attempt) => [attempt.origin, attempt.outcome, attempt.status]) };
	}

	it("prints that it runs two demo origins", () => {
		expect(server.output()).toContain("in front of 2 bundled demo origins, failing over in order");
	});

	it("fails over to the second demo origin when x-demo-fault-origin: 1 has only the first answer 529", async () => {
		const answer = await demoMessage({ "x-demo-fault": "overloaded", "x-demo-fault-origin": "1" });
		expect(answer.status, answer.text).toBe(200);
		expect(answer.attempts).toEqual([
			["service:ORIGIN", "retryable-status", 529],
			["service:ORIGIN2", "answered", 200],
		]);
	});

	it("answers from the first when the fault is meant for the second, and 529 when both apply it", async () => {
		const second = await demoMessage({ "x-demo-fault": "overloaded", "x-demo-fault-origin": "2" });
		expect(second.status, second.text).toBe(200);
		expect(second.attempts).toEqual([["service:ORIGIN", "answered", 200]]);
		const both = await demoMessage({ "x-demo-fault": "overloaded" });
		expect(both.status).toBe(529);
		expect(both.attempts).toEqual([
			["service:ORIGIN", "retryable-status", 529],
			["service:ORIGIN2", "retryable-status", 529],
		]);
	});
});
