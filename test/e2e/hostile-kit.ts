import { resolve } from "node:path";
import { expect } from "vitest";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import type { LocalServer } from "./local-server";
import { chunk, LAST_CHUNK, type RawResponse, requestHead, sendRaw } from "./raw-http";
import { SENTINEL_HEADER } from "./recording-origin";

/** The demo key with every scope (organisation org_demo, the default tier). */
export const DEMO_KEY = "sk-demo-key";
/** The demo key of organisation org_tight (the `tight` tier). */
export const TIGHT_KEY = "sk-demo-tight";
export const REQUEST_ID = /^req_[0-9A-Za-z]{24}$/;

const VARS = unstable_getMiniflareWorkerOptions(resolve(__dirname, "../../wrangler.toml")).workerOptions.bindings as Record<string, unknown>;

/**
 * `--var ROUTES=...`: wrangler.toml's route table with the named routes' fields changed (a field
 * set to `undefined` is removed). Throws for a route name the table does not have.
 */
export function routesVar(changes: Record<string, Record<string, unknown>>): string[] {
	const routes = VARS.ROUTES as Record<string, unknown>[];
	for (const name of Object.keys(changes)) {
		if (!routes.some((route) => route.name === name)) throw new Error(`wrangler.toml has no route named ${name}`);
	}
	const table = routes.map((route) => JSON.parse(JSON.stringify({ ...route, ...(changes[route.name as string] ?? {}) })) as unknown);
	return ["--var", `ROUTES=${JSON.stringify(table)}`];
}

/** `--var TIERS=...`: wrangler.toml's tiers with the `tight` tier (organisation org_tight) replaced. */
export function tightTierVar(tight: { requests_per_minute: number; input_tokens_per_minute: number; output_tokens_per_minute: number }): string[] {
	return ["--var", `TIERS=${JSON.stringify({ ...(VARS.TIERS as Record<string, unknown>), tight })}`];
}

/**
 * `--var ORG_TIERS=...`: wrangler.toml's organisation tiers plus `orgs` on the `tight` tier, so a
 * test drains or spends an organisation of its own (fresh IDs: local state persists between runs
 * and files), never the shared org_tight.
 */
export function tightOrgsVar(orgs: readonly string[]): string[] {
	return ["--var", `ORG_TIERS=${JSON.stringify({ ...(VARS.ORG_TIERS as Record<string, unknown>), ...Object.fromEntries(orgs.map((org) => [org, "tight"])) })}`];
}

/** What a client got, whichever way it asked. */
export interface Answer {
	readonly status: number;
	readonly headers: Readonly<Record<string, string>>;
	readonly text: string;
	/** False when the connection closed before the body's framing ended (a body cut off). */
	readonly complete: boolean;
}

export function fromRaw(response: RawResponse): Answer {
	return { status: response.status, headers: response.headers, text: response.text(), complete: response.complete };
}

/** A request with fetch(), its whole answer read. */
export async function fetchAnswer(url: string, init: RequestInit = {}): Promise<Answer> {
	const response = await fetch(url, init);
	const text = await response.text();
	const headers: Record<string, string> = {};
	response.headers.forEach((value, name) => {
		headers[name] = value;
	});
	return { status: response.status, headers, text, complete: true };
}

/** A raw request on its own connection (header names and framing exactly as given). */
export async function rawAnswer(
	server: LocalServer,
	method: string,
	path: string,
	headers: readonly (readonly [string, string])[],
	body?: string | Uint8Array,
): Promise<Answer> {
	return fromRaw(await sendRaw(server.url, requestHead(method, path, headers), body));
}

/** The API key and version headers every call carries. */
export function auth(key = DEMO_KEY): [string, string][] {
	return [
		["x-api-key", key],
		["anthropic-version", "2023-06-01"],
	];
}

/** Asserts the SPEC's envelope exactly, with the request-id header equal to the body's; returns the message. */
export function expectEnvelope(answer: Answer, status: number, type: string): string {
	expect(answer.status, answer.text).toBe(status);
	const requestId = answer.headers["request-id"];
	expect(requestId).toMatch(REQUEST_ID);
	const body = JSON.parse(answer.text) as { error?: { message?: unknown } };
	expect(body).toEqual({ type: "error", error: { type, message: expect.any(String) }, request_id: requestId });
	return String(body.error?.message);
}

/** A valid Messages request body of about `bytes` bytes (its one message padded with text). */
export function messageBody(bytes: number, maxTokens = 16): Buffer {
	const shell = JSON.stringify({ model: "claude-test-1", max_tokens: maxTokens, messages: [{ role: "user", content: "" }] });
	return Buffer.from(shell.replace('"content":""', `"content":"${"a ".repeat(Math.max(0, Math.floor((bytes - shell.length) / 2)))}"`));
}

/** `body` as a chunked body, in chunks of `size` bytes, with its last chunk. */
export function chunked(body: string | Uint8Array, size = 16 * 1024): Buffer {
	const bytes = Buffer.from(body);
	const parts: Buffer[] = [];
	for (let at = 0; at < bytes.byteLength; at += size) parts.push(chunk(bytes.subarray(at, at + size)));
	parts.push(Buffer.from(LAST_CHUNK));
	return Buffer.concat(parts);
}

/** `promise`, or a rejection naming `what` once `ms` have passed. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
	let timer: NodeJS.Timeout | undefined;
	const timeout = new Promise<never>((_, reject) => {
		timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
	});
	try {
		return await Promise.race([promise, timeout]);
	} finally {
		clearTimeout(timer);
	}
}

/** Resolves once the server's output satisfies `condition`; rejects naming `what` after `ms`. */
export async function waitForOutput(server: LocalServer, condition: (output: string) => boolean, what: string, ms = 5000): Promise<string> {
	const deadline = Date.now() + ms;
	for (;;) {
		const output = server.output();
		if (condition(output)) return output;
		if (Date.now() > deadline) throw new Error(`the server's output did not show ${what} within ${ms} ms:\n${output.slice(-3000)}`);
		await new Promise((done) => setTimeout(done, 50));
	}
}

let sentinels = 0;

/**
 * Sends a normal request through the guard and takes its answer, so that anything the guard was
 * going to send the origin for earlier requests has arrived by the time this returns. The origin
 * marks it as a sentinel, apart from the requests under test.
 */
export async function sentinel(server: LocalServer): Promise<void> {
	sentinels += 1;
	const answer = await fetchAnswer(`${server.url}/v1/models?sentinel=${sentinels}`, {
		headers: { "x-api-key": DEMO_KEY, "anthropic-version": "2023-06-01", [SENTINEL_HEADER]: "1" },
	});
	// A sentinel the guard refused (or shed) never reached the origin, so it proves nothing.
	expect(answer.status, `sentinel ${sentinels}: ${answer.text.slice(0, 300)}`).toBe(200);
}
