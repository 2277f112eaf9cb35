import { describe, expect, it, vi } from "vitest";
import { GuardError } from "../../src/errors/guard-error";
import type { RetryPolicy } from "../../src/config/origin-list";
import { type AttemptRecord, sendWithRetries } from "../../src/origins/attempts";
import { admitToPool, Overload } from "../../src/overload/admission";
import { OVERLOAD_DEFAULTS } from "../../src/overload/overload-config";
import type { OriginTarget } from "../../src/proxy/origin";

/** What a fake origin received of one attempt. */
interface Received {
	readonly url: string;
	readonly attempt: string | null;
	readonly requestId: string | null;
	readonly body: string | null;
}

/** An origin that answers each attempt as `answer` says (a Response, "refuse" to throw, "silent" to never answer). */
function fakeOrigin(name: string, answer: (seen: number) => Response | "refuse" | "silent") {
	const received: Received[] = [];
	const target: OriginTarget = {
		name,
		base: name,
		url: (incoming) => `${name}${incoming.pathname}`,
		async fetch(input, init) {
			const headers = new Headers(init.headers);
			const body = init.body === null || init.body === undefined ? null : await new Response(init.body).text();
			received.push({ url: input, attempt: headers.get("x-guard-attempt"), requestId: headers.get("request-id"), body });
			const verdict = answer(received.length);
			if (verdict === "refuse") throw new TypeError("connection refused");
			if (verdict === "silent") {
				return new Promise<Response>((_, reject) => init.signal?.addEventListener("abort", () => reject(new Error("aborted")), { once: true }));
			}
			return verdict;
		},
	};
	return { target, received };
}

const RETRY: RetryPolicy = { maxAttempts: 2, replayMaxBytes: 1024, connectTimeoutMs: 0, retryStatuses: [] };
const status = (code: number) => new Response(JSON.stringify({ code }), { status: code });

function run(targets: OriginTarget[], init: RequestInit, retry: RetryPolicy = RETRY, overload = new Overload(OVERLOAD_DEFAULTS)) {
	const state = { requestId: "req_test", startedAt: 0, url: new URL("https://guard.test/v1/messages"), decisions: {}, responseHeaders: {} };
	const slot = admitToPool(overload, "messages", targets.map((target) => target.name), state);
	const attempts: AttemptRecord[] = [];
	let answering: string | undefined;
	const sent = sendWithRetries(
		{
			candidates: targets,
			retry,
			slot,
			admits: (origin) => overload.breakerFor(origin).peek().admits,
			record: (attempt) => attempts.push(attempt),
			answering: (target) => {
				answering = target.name;
			},
		},
		new URL("https://guard.test/v1/messages"),
		init,
	);
	return { sent, attempts, slot, overload, answering: () => answering };
}

function bodyInit(text: string, headers: Record<string, string> = {}): RequestInit {
	const bytes = new TextEncoder().encode(text);
	return {
		method: "POST",
		headers: { "request-id": "req_same", "content-length": String(bytes.byteLength), ...headers },
		body: new Response(bytes).body,
	};
}

describe("sending to a route's origins before the first byte", () => {
	for (const [failure, answer] of [
		["refuses the connection", () => "refuse" as const],
		["answers 529", () => status(529)],
		["answers 503", () => status(503)],
	] as const) {
		it(`sends the same body to the next origin, attempt 2 with the same request-id, when the first ${failure}`, async () => {
			const first = fakeOrigin("https://a", answer);
			const second = fakeOrigin("https://b", () => status(200));
			const { sent, attempts, answering } = run([first.target, second.target], bodyInit('{"hello":1}'));
			expect((await sent).status).toBe(200);
			expect(first.received).toEqual([{ url: "https://a/v1/messages", attempt: "1", requestId: "req_same", body: '{"hello":1}' }]);
			expect(second.received).toEqual([{ url: "https://b/v1/messages", attempt: "2", requestId: "req_same", body: '{"hello":1}' }]);
			expect(attempts.map((attempt) => [attempt.origin, attempt.outcome])).toEqual([
				["https://a", failure === "refuses the connection" ? "unreachable" : "retryable-status"],
				["https://b", "answered"],
			]);
			expect(answering()).toBe("https://b");
		});
	}

	it("moves on when the first origin sends no headers within connect_timeout_seconds", async () => {
		const first = fakeOrigin("https://a", () => "silent");
		const second = fakeOrigin("https://b", () => status(200));
		const { sent, attempts } = run([first.target, second.target], bodyInit("{}"), { ...RETRY, connectTimeoutMs: 20 });
		expect((await sent).status).toBe(200);
		expect(attempts.map((attempt) => attempt.outcome)).toEqual(["no-headers", "answered"]);
		expect(attempts[0]?.ms).toBeGreaterThanOrEqual(15);
	});

	it("does not retry another 5xx (the origin may have done the work) unless the route lists it", async () => {
		const first = fakeOrigin("https://a", () => status(502));
		const second = fakeOrigin("https://b", () => status(200));
		const plain = run([first.target, second.target], bodyInit("{}"));
		expect((await plain.sent).status).toBe(502);
		expect(second.received).toHaveLength(0);
		const listed = run([first.target, second.target], bodyInit("{}"), { ...RETRY, retryStatuses: [502] });
		expect((await listed.sent).status).toBe(200);
		expect(second.received).toHaveLength(1);
	});

	it("does not retry a 4xx or a success", async () => {
		const first = fakeOrigin("https://a", () => status(400));
		const second = fakeOrigin("https://b", () => status(200));
		expect((await run([first.target, second.target], bodyInit("{}")).sent).status).toBe(400);
		expect(second.received).toHaveLength(0);
	});

	it("sends a body over replay_max_bytes once, and says so in the attempt", async () => {
		const first = fakeOrigin("https://a", () => status(529));
		const second = fakeOrigin("https://b", () => status(200));
		const { sent, attempts } = run([first.target, second.target], bodyInit("x".repeat(2000)));
		expect((await sent).status).toBe(529);
		expect(first.received[0]?.body).toHaveLength(2000);
		expect(second.received).toHaveLength(0);
		expect(attempts).toEqual([{ origin: "https://a", outcome: "retryable-status", status: 529, ms: expect.any(Number), not_retried: "body-over-replay-max" }]);
	});

	it("sends a body of unknown length (chunked) once", async () => {
		const first = fakeOrigin("https://a", () => "refuse");
		const second = fakeOrigin("https://b", () => status(200));
		const init: RequestInit = { method: "POST", headers: { "request-id": "req_same" }, body: new Response("{}").body };
		const { sent, attempts } = run([first.target, second.target], init);
		await expect(sent).rejects.toThrow("connection refused");
		expect(second.received).toHaveLength(0);
		expect(attempts[0]?.not_retried).toBe("body-length-unknown");
	});

	it("stops at max_attempts", async () => {
		const origins = ["https://a", "https://b", "https://c"].map((name) => fakeOrigin(name, () => status(503)));
		const { sent, attempts } = run(
			origins.map((origin) => origin.target),
			bodyInit("{}"),
		);
		expect((await sent).status).toBe(503);
		expect(origins.map((origin) => origin.received.length)).toEqual([1, 1, 0]);
		expect(attempts[1]?.not_retried).toBe("attempts-exhausted");
	});

	it("skips an origin whose breaker is open without counting it as an attempt", async () => {
		const overload = new Overload({ ...OVERLOAD_DEFAULTS, breaker: { ...OVERLOAD_DEFAULTS.breaker, failures: 1, minRequests: 1 } });
		const pass = overload.breakerFor("https://a").admit();
		if (pass.ok) pass.done("failure");
		expect(overload.breakerFor("https://a").state).toBe("open");
		const first = fakeOrigin("https://a", () => status(200));
		const second = fakeOrigin("https://b", () => status(200));
		const { sent, attempts } = run([first.target, second.target], bodyInit("{}"), RETRY, overload);
		expect((await sent).status).toBe(200);
		expect(first.received).toHaveLength(0);
		expect(second.received[0]?.attempt).toBe("1");
		expect(attempts.map((attempt) => attempt.outcome)).toEqual(["breaker-open", "answered"]);
	});

	it("counts a failed attempt against its own origin's breaker only", async () => {
		const overload = new Overload({ ...OVERLOAD_DEFAULTS, breaker: { ...OVERLOAD_DEFAULTS.breaker, failures: 2, minRequests: 2, failureRate: 0.5 } });
		const first = fakeOrigin("https://a", () => status(529));
		const second = fakeOrigin("https://b", () => status(200));
		for (let round = 0; round < 2; round++) {
			const { sent, slot } = run([first.target, second.target], bodyInit("{}"), RETRY, overload);
			const response = await sent;
			// The pipeline reports the answering attempt's outcome through the slot.
			slot.reached(response.status >= 500 ? "failure" : "success");
			slot.release();
		}
		expect(overload.breakerFor("https://a").state).toBe("open");
		expect(overload.breakerFor("https://b").state).toBe("closed");
		expect(overload.breakerFor("https://b").recent()).toEqual({ requests: 2, failures: 0 });
	});

	it("refuses with 529 only when every origin's breaker is open, retry-after the soonest half-open time", () => {
		vi.useFakeTimers({ toFake: ["Date"] });
		try {
			vi.setSystemTime(1_800_000_000_000);
			const overload = new Overload({ ...OVERLOAD_DEFAULTS, retryAfterSeconds: 1, breaker: { ...OVERLOAD_DEFAULTS.breaker, failures: 1, minRequests: 1, cooldownMs: 30_000 } });
			const state = { requestId: "req_test", startedAt: 0, url: new URL("https://guard.test/v1/messages"), decisions: {} as Record<string, unknown>, responseHeaders: {} };
			const trip = (origin: string) => {
				const pass = overload.breakerFor(origin).admit();
				if (pass.ok) pass.done("failure");
			};
			trip("https://a");
			// One origin open: still admitted, the other takes it.
			admitToPool(overload, "messages", ["https://a", "https://b"], state).release();
			vi.setSystemTime(1_800_000_010_000);
			trip("https://b");
			let refusal: unknown;
			try {
				admitToPool(overload, "messages", ["https://a", "https://b"], state);
			} catch (error) {
				refusal = error;
			}
			expect(refusal).toBeInstanceOf(GuardError);
			expect((refusal as GuardError).status).toBe(529);
			// a half-opens 30 s after it opened, 20 s from now; b in 30 s.
			expect((refusal as GuardError).headers["retry-after"]).toBe("20");
			expect(state.decisions.breaker).toEqual({ state: "open", origins: 2, retry_after_seconds: 20 });
		} finally {
			vi.useRealTimers();
		}
	});
});
