import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import worker from "../src/index";
import type { Env } from "../src/env";
import { vi } from "vitest";
import { TEST_KEY } from "./keys";

/** The SPEC's envelope, as a test reads it. */
export interface Envelope {
	type: string;
	error: { type: string; message: string };
	request_id: string;
}

/**
 * Calls the guard's fetch handler with the test environment, optionally overridden, and answers
 * as soon as the handler does; `settled` waits for its `waitUntil` work as well.
 */
export async function startGuard(
	input: Request | string,
	init?: RequestInit,
	overrides: Partial<Env> = {},
): Promise<{ response: Response; settled: () => Promise<void> }> {
	const request = withDefaults(typeof input === "string" ? new Request(new URL(input, "https://guard.test"), init) : input);
	const ctx = createExecutionContext();
	const response = await worker.fetch(request as Request<unknown, IncomingRequestCfProperties>, { ...env, ...overrides }, ctx);
	return { response, settled: () => waitOnExecutionContext(ctx) };
}

/**
 * What a well-behaved client sends, unless the test set it: the test key, `anthropic-version`,
 * and the content type its route takes. A header set to "" is removed instead.
 */
function withDefaults(request: Request): Request {
	const headers = request.headers;
	const path = new URL(request.url).pathname;
	const defaults: Record<string, string> = { "x-api-key": TEST_KEY, "anthropic-version": "2023-06-01" };
	if (request.method === "POST" && path === "/v1/files") defaults["content-type"] = "multipart/form-data; boundary=b";
	else if (request.method === "POST") defaults["content-type"] = "application/json";
	for (const [name, value] of Object.entries(defaults)) if (!headers.has(name)) headers.set(name, value);
	for (const [name, value] of [...headers]) if (value === "") headers.delete(name);
	return request;
}

/** Calls the guard and waits for all its work, `waitUntil` included. */
export async function callGuard(input: Request | string, init?: RequestInit, overrides: Partial<Env> = {}): Promise<Response> {
	const { response, settled } = await startGuard(input, init, overrides);
	if (response.body === null) {
		await settled();
		return response;
	}
	// A proxied body's log line waits for the body to be taken, as a client would take it: one
	// branch is read here, the other is the test's.
	const [forTest, taken] = response.body.tee();
	taken.pipeTo(new WritableStream()).catch(() => undefined);
	await settled();
	return new Response(forTest, response);
}

/** The guard in front of the test sink origin instead of the demo origin. */
export function callGuardToSink(input: Request | string, init?: RequestInit, overrides: Partial<Env> = {}): Promise<Response> {
	return callGuard(input, init, { ORIGIN: env.SINK, ...overrides });
}

/** What the sink origin recorded for a request ID. */
export async function sinkRecord(requestId: string): Promise<import("./fixtures/sink-origin").SinkRecord> {
	const record = await sinkRecordIfAny(requestId);
	if (record === undefined) throw new Error(`the sink has no record of ${requestId}`);
	return record;
}

/**
 * What the sink origin recorded for a request ID, or `undefined` when the request never reached it
 * (the sink's own "no such record"). Any other answer is a sink failure and throws: it must never
 * read as "the origin saw nothing".
 */
export async function sinkRecordIfAny(requestId: string): Promise<import("./fixtures/sink-origin").SinkRecord | undefined> {
	const response = await env.SINK.fetch(`https://sink.test/__sink/requests/${requestId}`);
	const text = await response.text();
	if (response.status === 404 && text === "no such record") return undefined;
	if (!response.ok) throw new Error(`the sink failed to answer for ${requestId}: ${response.status} ${text.slice(0, 200)}`);
	return JSON.parse(text);
}

/** Reads an error response and checks the parts every envelope shares. */
export async function readEnvelope(response: Response): Promise<Envelope> {
	if (response.headers.get("content-type") !== "application/json") {
		throw new Error(`expected application/json, got ${response.headers.get("content-type")}`);
	}
	return (await response.json()) as Envelope;
}

/** SHA-256 of bytes, in hex. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
	const digest = await crypto.subtle.digest("SHA-256", bytes);
	return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Deterministic pseudo-random bytes, so a failing hash comparison can be reproduced. */
export function patternBytes(length: number, seed = 1): Uint8Array {
	const bytes = new Uint8Array(length);
	let state = seed >>> 0 || 1;
	for (let i = 0; i < length; i++) {
		state ^= state << 13;
		state ^= state >>> 17;
		state ^= state << 5;
		bytes[i] = state & 0xff;
	}
	return bytes;
}

/**
 * A stream that yields `bytes` in chunks of `chunkSize`, so the request has no Content-Length. It
 * is a byte stream, like a body from the network: the guard reads it with BYOB reads.
 */
export function chunkedStream(bytes: Uint8Array, chunkSize = 64 * 1024): ReadableStream<Uint8Array> {
	let offset = 0;
	return new ReadableStream({
		type: "bytes",
		pull(controller) {
			if (offset >= bytes.byteLength) {
				controller.close();
				return;
			}
			controller.enqueue(bytes.slice(offset, offset + chunkSize));
			offset += chunkSize;
		},
	}) as ReadableStream<Uint8Array>;
}

/** The fixed message every request gets while the configuration is invalid. */
export const MISCONFIGURED = "The service is misconfigured; its operator has been told. Please retry later.";

/**
 * Calls the guard with a configuration it must refuse, and returns the client's envelope and the
 * field-by-field problem the guard logged for the operator (never shown to the client).
 */
export async function configProblem(
	path: string,
	overrides: Partial<Env>,
	init?: RequestInit,
): Promise<{ response: Response; envelope: Envelope; problem: string }> {
	const spy = vi.spyOn(console, "error");
	try {
		const response = await callGuardToSink(path, init, overrides);
		const envelope = await readEnvelope(response);
		const logged = spy.mock.calls.map(([first]) => first as { message?: string; field?: string; problem?: string }).find((line) => line?.message === "invalid configuration");
		return { response, envelope, problem: logged ? `${logged.field}: ${logged.problem}` : "" };
	} finally {
		spy.mockRestore();
	}
}
