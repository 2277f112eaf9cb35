// Helpers for accounting.test.ts (issue 19, docs/accounting-design.md): an origin whose answers
// report the usage a test chooses, organisations and keys of a test's own through the admin API,
// tiers with small limits and prices, and the settlement invariant read from the admin API.
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, request as httpRequest, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { expect } from "vitest";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { routesVar } from "./hostile-kit";
import type { LocalServer } from "./local-server";
import { BEHAVIOUR_HEADER, type OriginRecord, originRecord } from "./recording-origin";
import { Watched } from "./watched";
import { recordEnds } from "./origin-ends";

const VARS = unstable_getMiniflareWorkerOptions(resolve(__dirname, "../../wrangler.toml")).workerOptions.bindings as Record<string, unknown>;

// ------------------------------------------------------------------------------------------------
// Money and usage

/** Usage as the API reports it. */
export interface Usage {
	readonly input_tokens: number;
	readonly output_tokens: number;
}

/** USD per million tokens, as a tier's or family's `price` is written in wrangler.toml. */
export interface PriceUsd {
	readonly input: number;
	readonly output: number;
	readonly cache_write: number;
	readonly cache_read: number;
}

/** A price with every kind of token at `input` and `output` USD per million (cache prices follow input). */
export function price(input: number, output: number): PriceUsd {
	return { input, output, cache_write: input, cache_read: input };
}

/** Nano-dollars (10^-9 USD) per token at `usdPerMillion`: exact for prices of at most three decimals. */
export function nanosPerToken(usdPerMillion: number): number {
	return Math.round(usdPerMillion * 1000);
}

/** What `usage` costs at `price` (times `factor`, e.g. the batch price's 0.5), in nano-dollars. */
export function costNanos(usage: Usage, at: PriceUsd, factor = 1): number {
	return Math.round((usage.input_tokens * nanosPerToken(at.input) + usage.output_tokens * nanosPerToken(at.output)) * factor);
}

/** Dollars as the admin API shows them, back in nano-dollars. */
export function nanos(usd: number): number {
	return Math.round(usd * 1e9);
}

// ------------------------------------------------------------------------------------------------
// Configuration: tiers of the test's own for organisations of the test's own

/** An organisation ID no earlier run used: local state persists between runs. */
export function freshOrg(tag: string): string {
	return `org_acct_${tag}_${Date.now().toString(36)}${randomBytes(3).toString("hex")}`;
}

/** A tier as wrangler.toml writes it (snake_case fields). */
export type TierSpec = Record<string, unknown>;

/**
 * `npm start` arguments: wrangler.toml's tiers plus `tiers`, its ORG_TIERS plus `orgs` (organisation
 * to tier name), exact limiter mode, the recording origin, and the route changes given.
 */
export function stackArgs(options: {
	origin: string;
	tiers: Record<string, TierSpec>;
	orgs: Record<string, string>;
	routes?: Record<string, Record<string, unknown>>;
}): string[] {
	const tiers = { ...(VARS.TIERS as Record<string, unknown>), ...options.tiers };
	const orgTiers = { ...(VARS.ORG_TIERS as Record<string, unknown>), ...options.orgs };
	return [
		"--origin",
		options.origin,
		"--var",
		`TIERS=${JSON.stringify(tiers)}`,
		"--var",
		`ORG_TIERS=${JSON.stringify(orgTiers)}`,
		"--var",
		'LIMITER_MODE="exact"',
		...(options.routes === undefined ? [] : routesVar(options.routes)),
	];
}

// ------------------------------------------------------------------------------------------------
// The admin API

export const ADMIN_HEADERS = { authorization: "Bearer demo-admin-token" };

/** The `claims` field issue 19 adds to the admin API's organisation view. */
export interface ClaimsView {
	outstanding: number;
	held: { requests: number; input_tokens: number; output_tokens: number; usd: number };
	settled: number;
	settled_usd: number;
}

/** The parts of `GET /_guard/api/orgs/:id`'s `org` the tests read. */
export interface OrgView {
	id: string;
	tier: string | null;
	limits: { pool: string; limit: "requests" | "input_tokens" | "output_tokens"; per_minute: number; remaining: number }[];
	spend: { period: "day" | "month"; spent_usd: number; budget_usd: number | null }[];
	claims?: ClaimsView;
}

/** Creates an API key of `orgId` through the admin API (`POST /_guard/api/keys`) and answers it. */
export async function createKey(server: LocalServer, orgId: string, scopes: string[] = ["messages", "batches"]): Promise<string> {
	const response = await fetch(`${server.url}/_guard/api/keys`, {
		method: "POST",
		headers: { ...ADMIN_HEADERS, "content-type": "application/json" },
		body: JSON.stringify({ org_id: orgId, scopes, name: "accounting e2e" }),
	});
	const text = await response.text();
	if (response.status !== 201) throw new Error(`POST /_guard/api/keys for ${orgId} answered ${response.status}: ${text}`);
	return (JSON.parse(text) as { key: string }).key;
}

/** The organisation as the admin API shows it now. */
export async function orgView(server: LocalServer, orgId: string): Promise<OrgView> {
	const response = await fetch(`${server.url}/_guard/api/orgs/${encodeURIComponent(orgId)}`, { headers: ADMIN_HEADERS });
	const text = await response.text();
	if (response.status !== 200) throw new Error(`GET /_guard/api/orgs/${orgId} answered ${response.status}: ${text}`);
	return (JSON.parse(text) as { org: OrgView }).org;
}

/** The organisation's spend today (UTC), in nano-dollars. */
export function spentToday(view: OrgView): number {
	const day = view.spend.find((line) => line.period === "day");
	if (day === undefined) throw new Error(`the admin view of ${view.id} has no day spend line: ${JSON.stringify(view.spend)}`);
	return nanos(day.spent_usd);
}

/** Polls `check` every 100 ms until it answers a value, for at most `ms`; rejects naming `what`. */
export async function until<T>(check: () => Promise<T | undefined> | T | undefined, what: string, ms = 20_000): Promise<T> {
	const deadline = Date.now() + ms;
	for (;;) {
		const value = await check();
		if (value !== undefined) return value;
		if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
		await new Promise((done) => setTimeout(done, 100));
	}
}

/**
 * Polls the organisation's spend today (bounded, every 100 ms) until `enough(nanos)` holds, and
 * answers the last spend seen either way: the caller asserts on it, so a charge that never comes
 * fails naming what was charged.
 */
export async function spendWhen(server: LocalServer, orgId: string, enough: (spentNanos: number) => boolean, ms = 8000): Promise<number> {
	const deadline = Date.now() + ms;
	for (;;) {
		const spent = spentToday(await orgView(server, orgId));
		if (enough(spent) || Date.now() > deadline) return spent;
		await new Promise((done) => setTimeout(done, 100));
	}
}

/**
 * ACCOUNTING.md's invariant for one organisation, once its requests have ended: polls (bounded)
 * until no claim is outstanding and at least `settled` claims were settled, then asserts
 * - nothing is held (`claims.held` all 0);
 * - exactly `settled` settlements (when given): each admitted request settled once, never twice
 *   (`atLeast`: at least that many, where a refusal may come before or after the claim);
 * - what was charged (`spend`, day) equals what the settlements charged (`claims.settled_usd`);
 * - and equals `chargedNanos` when given (the cost of the usage the origin reported).
 * Fails at once when the admin view has no `claims` (the field issue 19 adds).
 * Answers the view, for the caller's own assertions.
 */
export async function expectSettled(
	server: LocalServer,
	orgId: string,
	expected: { settled?: number; atLeast?: number; chargedNanos?: number } = {},
): Promise<OrgView> {
	const wanted = expected.settled ?? expected.atLeast ?? 0;
	let last: OrgView | undefined;
	let view: OrgView;
	try {
		view = await until(async () => {
			last = await orgView(server, orgId);
			const claims = last.claims;
			if (claims === undefined) throw new Error(`the admin API's view of ${orgId} has no claims field (issue 19): ${JSON.stringify(last).slice(0, 600)}`);
			return claims.outstanding === 0 && claims.settled >= wanted ? last : undefined;
		}, `${orgId}'s claims settling (outstanding 0, at least ${wanted} settled)`);
	} catch (error) {
		if (last?.claims !== undefined) throw new Error(`${(error as Error).message}; last claims: ${JSON.stringify(last.claims)}`);
		throw error;
	}
	const claims = view.claims as ClaimsView;
	expect(claims.held, `${orgId}: nothing is held once no claim is outstanding`).toMatchObject({ requests: 0, input_tokens: 0, output_tokens: 0, usd: 0 });
	for (const [name, value] of Object.entries(claims.held)) expect(value, `${orgId}: claims.held.${name}`).toBe(0);
	if (expected.settled !== undefined) expect(claims.settled, `${orgId}: settlements (one per admitted request)`).toBe(expected.settled);
	if (expected.atLeast !== undefined) expect(claims.settled, `${orgId}: settlements`).toBeGreaterThanOrEqual(expected.atLeast);
	const spent = spentToday(view);
	expect(nanos(claims.settled_usd), `${orgId}: settled_usd equals the day's spend`).toBe(spent);
	if (expected.chargedNanos !== undefined) expect(spent, `${orgId}: the day's spend equals the cost of the usage the origin reported`).toBe(expected.chargedNanos);
	return view;
}

// ------------------------------------------------------------------------------------------------
// The accounting origin

/** What the accounting origin saw of one request, and the usage it reported in its answer. */
export interface AccountingRecord extends OriginRecord {
	/** The body received so far (kept: bodies here are small, and the model is read from it). */
	body: Buffer;
	/**
	 * The usage the origin reported in an answer the guard could read whole: one entry for a
	 * message (JSON, or a stream that reached its final `message_delta`), one per line of a batch's
	 * results. Empty while nothing was reported (or the answer was cut before its usage).
	 */
	reported: (Usage & { model: string })[];
	/** Text deltas written of an event stream. */
	deltasSent: number;
}

/** A recording origin that answers as the accounting tests need (see the header constants). */
export interface AccountingOrigin {
	readonly url: string;
	readonly records: readonly AccountingRecord[];
	/** The records whose path and query start with `prefix` (sentinels left out). */
	at(prefix: string): AccountingRecord[];
	/** Resolves once `condition` holds (checked on every change); rejects naming `what` after `timeoutMs`. */
	waitFor(condition: () => boolean, what: string, timeoutMs?: number): Promise<void>;
	stop(): Promise<void>;
}

/**
 * `{"input_tokens":N,"output_tokens":M}`: the usage a message answer reports. A count not given is
 * the default: input as the body's bytes / 4 (rounded up: what the origin received, counted as the
 * guard estimates it, so settling neither refunds nor adds to an input claim), output 2.
 */
export const USAGE_HEADER = "x-test-usage";
/**
 * `{"deltas":40,"delta_bytes":100,"pause_after":30,"cut_after":10,"input_tokens":N,"output_tokens":M}`:
 * answer with an event stream of `deltas` text deltas of `delta_bytes` ASCII bytes each, then a
 * `message_delta` with `output_tokens` and `message_stop`. `pause_after`: after that many deltas,
 * send nothing more (until the connection closes). `cut_after`: after that many, close the
 * connection (the stream is cut).
 */
export const SSE_HEADER = "x-test-sse";
/** `[{"input_tokens":..,"output_tokens":..}, ...]`: on batch create, the usage of each result line. */
export const BATCH_USAGE_HEADER = "x-test-batch-usage";
/**
 * Values of {@link BEHAVIOUR_HEADER} besides recording-origin's `hang`, `503` and `destroy`:
 * `json-cut`: `200` with the whole message's `content-length`, the bytes before its `usage`, then
 * the connection closes.
 */
export const JSON_CUT = "json-cut";

interface StoredBatch {
	readonly id: string;
	readonly lines: { custom_id: string; model: string; usage: Usage }[];
}

/** Starts the accounting origin on a free loopback port. */
export async function startAccountingOrigin(): Promise<AccountingOrigin> {
	const records: AccountingRecord[] = [];
	const batches = new Map<string, StoredBatch>();
	const watched = new Watched();
	const changed = () => watched.changed();
	let base = "";
	const server = createServer((req, res) => {
		const entry: AccountingRecord = {
			...originRecord(req),
			body: Buffer.alloc(0),
			reported: [],
			deltasSent: 0,
		};
		records.push(entry);
		changed();
		const behaviour = String(req.headers[BEHAVIOUR_HEADER] ?? "");
		if (behaviour === "destroy") {
			req.socket.destroy();
			return;
		}
		const parts: Buffer[] = [];
		req.on("data", (data: Buffer) => {
			parts.push(data);
			entry.bodyBytes += data.byteLength;
			changed();
		});
		req.on("end", () => {
			entry.body = Buffer.concat(parts);
			entry.bodyOutcome = "complete";
			changed();
			answer(req, res, entry, { behaviour, base, batches, changed });
		});
		recordEnds(entry, req, res, changed);
	});
	await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
	base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
	return {
		url: base,
		records,
		at: (prefix) => records.filter((entry) => !entry.sentinel && entry.url.startsWith(prefix)),
		waitFor(condition, what, timeoutMs = 10_000) {
			return watched.waitFor(condition, timeoutMs, () => `the accounting origin did not see ${what} within ${timeoutMs} ms`);
		},
		async stop() {
			server.closeAllConnections();
			await new Promise<void>((done) => server.close(() => done()));
		},
	};
}

interface AnswerContext {
	behaviour: string;
	base: string;
	batches: Map<string, StoredBatch>;
	changed: () => void;
}

function answer(req: IncomingMessage, res: ServerResponse, entry: AccountingRecord, context: AnswerContext): void {
	const method = req.method ?? "";
	const path = (req.url ?? "").split("?")[0] ?? "";
	const batchPath = /^\/v1\/messages\/batches\/([^/]+)(\/results)?$/.exec(path);
	if (context.behaviour === "hang") {
		// Reads the body, never answers.
	} else if (context.behaviour === "503") {
		json(res, 503, { type: "error", error: { type: "api_error", message: "The origin is unavailable." } });
	} else if (method === "POST" && path === "/v1/messages") {
		message(req, res, entry, context);
	} else if (method === "POST" && path === "/v1/messages/batches") {
		createBatch(req, res, entry, context);
	} else if (method === "GET" && batchPath !== null) {
		batchAnswer(res, entry, context, batchPath[1] ?? "", batchPath[2] !== undefined);
	} else if (method === "GET" && path === "/v1/models") {
		json(res, 200, { data: [], has_more: false, first_id: null, last_id: null });
	} else {
		json(res, 404, { type: "error", error: { type: "not_found_error", message: `Not found: ${method} ${path}` } });
	}
}

/** A batch, or its results: one JSON line per request, each with the usage chosen at creation. */
function batchAnswer(res: ServerResponse, entry: AccountingRecord, context: AnswerContext, id: string, results: boolean): void {
	const stored = context.batches.get(id);
	if (stored === undefined) {
		json(res, 404, { type: "error", error: { type: "not_found_error", message: "No such batch." } });
	} else if (!results) {
		json(res, 200, batchObject(stored, context.base));
	} else {
		entry.reported = stored.lines.map((line) => ({ ...line.usage, model: line.model }));
		context.changed();
		const jsonl = stored.lines
			.map((line) => JSON.stringify({ custom_id: line.custom_id, result: { type: "succeeded", message: messageObject(line.model, line.usage, "ok") } }))
			.map((line) => `${line}\n`)
			.join("");
		res.writeHead(200, { "content-type": "application/x-jsonl", "content-length": String(Buffer.byteLength(jsonl)) });
		res.end(jsonl);
	}
}

/** The body's top-level `model` as JSON.parse reads it (the last duplicate wins), or a default. */
function modelOf(body: Buffer): string {
	try {
		const parsed = JSON.parse(body.toString("utf8")) as { model?: unknown };
		return typeof parsed.model === "string" ? parsed.model : "claude-test-1";
	} catch {
		return "claude-test-1";
	}
}

function usageFrom(header: string | string[] | undefined, fallback: Usage): Usage {
	if (typeof header !== "string") return fallback;
	const parsed = JSON.parse(header) as Partial<Usage>;
	return { input_tokens: parsed.input_tokens ?? fallback.input_tokens, output_tokens: parsed.output_tokens ?? fallback.output_tokens };
}

function messageObject(model: string, usage: Usage, text: string): Record<string, unknown> {
	return {
		id: "msg_acct",
		type: "message",
		role: "assistant",
		model,
		content: [{ type: "text", text }],
		stop_reason: "end_turn",
		stop_sequence: null,
		usage,
	};
}

function message(req: IncomingMessage, res: ServerResponse, entry: AccountingRecord, context: AnswerContext): void {
	const model = modelOf(entry.body);
	const sse = req.headers[SSE_HEADER];
	if (typeof sse === "string") {
		stream(res, entry, model, JSON.parse(sse) as StreamPlan, context);
		return;
	}
	const usage = usageFrom(req.headers[USAGE_HEADER], { input_tokens: Math.ceil(entry.bodyBytes / 4), output_tokens: 2 });
	const text = JSON.stringify(messageObject(model, usage, "ok"));
	if (context.behaviour === JSON_CUT) {
		// The whole message's length is promised; the bytes up to its usage are sent, then the connection closes.
		res.writeHead(200, { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)) });
		res.write(text.slice(0, text.indexOf('"usage"')), () => res.socket?.destroy());
		return;
	}
	entry.reported = [{ ...usage, model }];
	context.changed();
	json(res, 200, JSON.parse(text));
}

interface StreamPlan {
	deltas: number;
	delta_bytes: number;
	pause_after?: number;
	cut_after?: number;
	input_tokens?: number;
	output_tokens?: number;
}

function sseEvent(name: string, data: unknown): string {
	return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** An event stream of `plan.deltas` text deltas, each its own write. */
function stream(res: ServerResponse, entry: AccountingRecord, model: string, plan: StreamPlan, context: AnswerContext): void {
	const usage: Usage = { input_tokens: plan.input_tokens ?? 3, output_tokens: plan.output_tokens ?? plan.deltas };
	res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" });
	res.write(
		sseEvent("message_start", {
			type: "message_start",
			message: { ...messageObject(model, { input_tokens: usage.input_tokens, output_tokens: 1 }, ""), content: [], stop_reason: null },
		}),
	);
	res.write(sseEvent("content_block_start", { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }));
	const text = "x".repeat(plan.delta_bytes);
	let sent = 0;
	const next = () => {
		if (res.destroyed) return;
		if (plan.cut_after !== undefined && sent >= plan.cut_after) {
			res.socket?.destroy();
			return;
		}
		if (plan.pause_after !== undefined && sent >= plan.pause_after) return;
		if (sent >= plan.deltas) {
			res.write(sseEvent("content_block_stop", { type: "content_block_stop", index: 0 }));
			res.write(
				sseEvent("message_delta", {
					type: "message_delta",
					delta: { stop_reason: "end_turn", stop_sequence: null },
					usage: { output_tokens: usage.output_tokens },
				}),
			);
			entry.reported = [{ ...usage, model }];
			context.changed();
			res.end(sseEvent("message_stop", { type: "message_stop" }));
			return;
		}
		sent += 1;
		entry.deltasSent = sent;
		context.changed();
		// Each delta leaves as a write of its own once the previous one is flushed.
		res.write(sseEvent("content_block_delta", { type: "content_block_delta", index: 0, delta: { type: "text_delta", text } }), () => setImmediate(next));
	};
	next();
}

function createBatch(req: IncomingMessage, res: ServerResponse, entry: AccountingRecord, context: AnswerContext): void {
	let requests: { custom_id?: unknown; params?: { model?: unknown } }[] = [];
	try {
		const parsed = JSON.parse(entry.body.toString("utf8")) as { requests?: unknown };
		if (Array.isArray(parsed.requests)) requests = parsed.requests as typeof requests;
	} catch {
		json(res, 400, { type: "error", error: { type: "invalid_request_error", message: "The batch is not JSON." } });
		return;
	}
	const header = req.headers[BATCH_USAGE_HEADER];
	const usages = typeof header === "string" ? (JSON.parse(header) as Usage[]) : [];
	const id = `msgbatch_acct${context.batches.size + 1}_${randomBytes(3).toString("hex")}`;
	const stored: StoredBatch = {
		id,
		lines: requests.map((request, i) => ({
			custom_id: typeof request.custom_id === "string" ? request.custom_id : `r${i}`,
			model: typeof request.params?.model === "string" ? request.params.model : "claude-test-1",
			usage: usages[i] ?? { input_tokens: 3, output_tokens: 2 },
		})),
	};
	context.batches.set(id, stored);
	json(res, 200, batchObject(stored, context.base));
}

function batchObject(stored: StoredBatch, base: string): Record<string, unknown> {
	return {
		id: stored.id,
		type: "message_batch",
		processing_status: "ended",
		request_counts: { processing: 0, succeeded: stored.lines.length, errored: 0, canceled: 0, expired: 0 },
		created_at: "2026-01-01T00:00:00Z",
		ended_at: "2026-01-01T00:01:00Z",
		expires_at: "2026-01-02T00:00:00Z",
		archived_at: null,
		cancel_initiated_at: null,
		results_url: `${base}/v1/messages/batches/${stored.id}/results`,
	};
}

function json(res: ServerResponse, status: number, body: unknown): void {
	const text = JSON.stringify(body);
	res.writeHead(status, { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)) });
	res.end(text);
}

// ------------------------------------------------------------------------------------------------
// A client that reads part of an event stream, then leaves

/** An event stream being read: the deltas seen so far, and the socket to close. */
export interface StreamReader {
	/** Resolves with the status and headers. */
	readonly head: Promise<{ status: number; headers: Record<string, string | string[] | undefined> }>;
	/** Text deltas received so far. */
	deltas(): number;
	/** Everything received so far (chunked framing removed). */
	text(): string;
	/** Resolves once `count` text deltas have arrived; rejects if the stream ends first or after `ms`. */
	deltasReached(count: number, ms?: number): Promise<void>;
	/** Resolves when the response ends or the connection closes. */
	readonly ended: Promise<void>;
	/** Closes the connection at once (the client leaves). */
	leave(): void;
}

/** POSTs `body` to `path` on its own connection (no keep-alive pool) and reads the answer as it arrives. */
export function readStream(server: LocalServer, path: string, headers: Record<string, string>, body: string): StreamReader {
	const { hostname, port } = new URL(server.url);
	let received = "";
	const watched = new Watched();
	let finished = false;
	let resolveEnded: () => void = () => undefined;
	const ended = new Promise<void>((done) => {
		resolveEnded = done;
	});
	const finish = () => {
		if (finished) return;
		finished = true;
		resolveEnded();
		watched.changed();
	};
	const request = httpRequest({
		host: hostname,
		port: Number(port),
		method: "POST",
		path,
		agent: false,
		headers: { ...headers, "content-length": String(Buffer.byteLength(body)) },
	});
	const head = new Promise<{ status: number; headers: Record<string, string | string[] | undefined> }>((done, fail) => {
		request.once("response", (response) => {
			done({ status: response.statusCode ?? 0, headers: response.headers });
			response.setEncoding("utf8");
			response.on("data", (text: string) => {
				received += text;
				watched.changed();
			});
			response.on("end", finish);
			response.on("close", finish);
			response.on("error", finish);
		});
		request.once("error", (error) => {
			fail(error);
			finish();
		});
		request.once("close", finish);
	});
	head.catch(() => undefined);
	request.end(body);
	const count = () => received.split('"type":"text_delta"').length - 1;
	return {
		head,
		deltas: count,
		text: () => received,
		deltasReached(wanted, ms = 10_000) {
			return watched.waitFor(
				() => count() >= wanted,
				ms,
				() => `${wanted} deltas did not arrive within ${ms} ms (${count()} did)`,
				() => (finished ? `the stream ended after ${count()} of the ${wanted} deltas awaited:\n${received.slice(-500)}` : undefined),
			);
		},
		ended,
		leave() {
			request.destroy();
		},
	};
}
