// Issue 20's "Done when", black box against `npm start` in front of an origin started here:
// with max_in_flight scaled down to 10 and org_share 0.5 (two organisations of five requests each
// hold every slot), a third organisation is served 200 while two others run each attack (clients
// that never read, uploads of stated length that stall, uploads that drip under the minimum rate),
// and encoded answers of the origin reach the client with their usage charged.
import { brotliDecompressSync, gunzipSync, inflateSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { costNanos, createKey, freshOrg, orgView, price, spendWhen, stackArgs, until } from "./accounting-kit";
import { type Answer, expectEnvelope, fetchAnswer, fromRaw, messageBody, within } from "./hostile-kit";
import { type LocalServer, startLocalServer } from "./local-server";
import { type RawExchange, requestHead, sendRaw } from "./raw-http";
import {
	BEHAVIOUR,
	BEHAVIOUR_HEADER,
	drip,
	ENCODING_HEADER,
	FRAMING_HEADER,
	type NonReader,
	nonReader,
	OUTPUT_TOKENS,
	postHead,
	probe,
	probeUntilServed,
	runs,
	STREAM_DELTAS,
	type SlotsOrigin,
	type SlotsRecord,
	startSlotsOrigin,
	startUpload,
	TEXT_BYTES_HEADER,
} from "./slots-kit";

/** Ten slots, five per organisation: two attacking organisations hold them all. */
const OVERLOAD = ["--var", 'OVERLOAD={"max_in_flight":10,"org_share":0.5,"retry_after_seconds":1}'];
/** Requests each attacking organisation keeps in flight (its whole share). */
const PER_ATTACKER = 5;
/** The grace before the minimum upload rate applies (Kestrel's MinRequestBodyDataRate). */
const GRACE_MS = 5000;
/** `min_body_rate_bytes_per_second`: the default, and what the drip describe sets. */
const MIN_RATE = 240;
/** How long past its deadline (see {@link rateDeadlineMs}) a stalled or dripping upload may still hold its slot before its 408. */
const RATE_BOUND_MS = 3000;

/**
 * When a body of `declared` bytes arriving under the minimum rate is due at the latest: the grace,
 * plus the time the declared length takes at the minimum rate. Either reading of "at no less than
 * the rate after the grace" answers by then: Kestrel's running average (408 as soon as the grace
 * ends, here) and a deadline of grace + length / rate (what a watchdog on an untouched body, which
 * sees only when the origin has read the last byte, can enforce).
 */
function rateDeadlineMs(declared: number): number {
	return GRACE_MS + Math.ceil((declared / MIN_RATE) * 1000);
}
/** Between the client's clock and the guard's: the time a 408 takes to be written and read. */
const MEASURE_SLACK_MS = 1000;
/** `client_idle_timeout_seconds` on the routes the non-reading clients use. */
const CLIENT_IDLE_SECONDS = 2;
/**
 * Slack on every bound: the machine has two busy cores, and a non-reading client's bound starts
 * only once every buffer between the origin and the client's paused socket is full.
 */
const SLACK_MS = 8000;
/** A tier with a price, so that what an answer's usage costs shows in the organisation's spend. */
const PRICED = price(1, 1000);
const PRICED_TIER = { requests_per_minute: 10_000, input_tokens_per_minute: 100_000_000, output_tokens_per_minute: 10_000_000, price: PRICED };

interface Stack {
	server: LocalServer;
	origin: SlotsOrigin;
}

/** One guard in front of one slots origin for a describe; `args` gets the origin's URL. */
function stackPerDescribe(args: (originUrl: string) => string[]): Stack {
	const stack = { server: undefined as unknown as LocalServer, origin: undefined as unknown as SlotsOrigin };
	beforeAll(async () => {
		stack.origin = await startSlotsOrigin();
		stack.server = await startLocalServer(args(stack.origin.url));
	});
	afterAll(async () => {
		await stack.server?.stop();
		await stack.origin?.stop();
	});
	return stack;
}

/**
 * Two attacking organisations and a third, each with a key of its own (fresh IDs: local state
 * persists between runs); `attackers` and `third` are keys, `attackerOrgs` the attackers' IDs.
 */
async function threeOrganisations(server: LocalServer, tag: string): Promise<{ attackers: [string, string]; third: string; attackerOrgs: [string, string] }> {
	const orgs = ["a", "b", "third"].map((who) => freshOrg(`slots_${tag}_${who}`));
	const [a, b, c] = await Promise.all(orgs.map((org) => createKey(server, org, ["messages"])));
	return { attackers: [a as string, b as string], third: c as string, attackerOrgs: [orgs[0] as string, orgs[1] as string] };
}

/** The records of the attack tagged `tag` (`case=<tag>&` in the query), whatever the path. */
function attackRecords(origin: SlotsOrigin, tag: string): SlotsRecord[] {
	return origin.records.filter((record) => !record.sentinel && record.url.includes(`?case=${tag}&`));
}

/** Waits until the origin has every request of the attack `tag` (it holds its slots: they were admitted and forwarded). */
async function attackInPlace(origin: SlotsOrigin, tag: string, count: number): Promise<void> {
	await origin.waitFor(() => attackRecords(origin, tag).length >= count, `${count} attacking requests (case=${tag}) arrive`, 20_000);
}

/** The first probe of the third organisation once the attack is in place: refused, since the two attackers hold every slot. */
async function expectEverySlotHeld(server: LocalServer, key: string, tag: string): Promise<void> {
	const first = await probe(server, key, `${tag}-held`);
	expect(first.status, `the attack holds every slot before its bound (the third organisation's first probe): ${first.text}`).toBe(529);
}

function expectServedWithin(result: { statuses: number[]; servedAfterMs?: number; last?: Answer }, boundMs: number, what: string): void {
	expect(
		result.servedAfterMs,
		`the third organisation is served 200 within ${boundMs} ms ${what}; it got ${runs(result.statuses)}, last: ${result.last?.text.slice(0, 300)}`,
	).toBeDefined();
	expect(result.servedAfterMs).toBeLessThanOrEqual(boundMs);
	expect(result.last?.status).toBe(200);
}

function settledOutcome(origin: SlotsOrigin, tag: string, pick: (record: SlotsRecord) => string, what: string, ms = 15_000): Promise<void> {
	return origin.waitFor(() => attackRecords(origin, tag).every((record) => pick(record) !== "pending"), what, ms);
}

// ------------------------------------------------------------------------------------------------

describe.each([
	["event streams", BEHAVIOUR.endlessStream, true],
	["large JSON answers (64 MiB with content-length)", BEHAVIOUR.bigJson, false],
] as const)("clients that never read %s are let go after client_idle_timeout_seconds", (kind, behaviour, stream) => {
	const stack = stackPerDescribe((origin) => [
		...stackArgs({ origin, tiers: {}, orgs: {}, routes: { "messages.create": { client_idle_timeout_seconds: CLIENT_IDLE_SECONDS } } }),
		...OVERLOAD,
	]);

	it(`serves a third organisation 200 within client_idle_timeout_seconds + slack while two organisations hold ${kind} they never read, and cancels the origin's answers`, async () => {
		const { server, origin } = stack;
		const keys = await threeOrganisations(server, stream ? "sse" : "json");
		const tag = `nonreader-${behaviour}`;
		const body = JSON.stringify({ model: "claude-test-1", max_tokens: 16, stream, messages: [{ role: "user", content: "hi" }] });
		const readers: NonReader[] = [];
		try {
			keys.attackers.forEach((key, org) => {
				for (let i = 0; i < PER_ATTACKER; i++) {
					const head = postHead(`/v1/messages?case=${tag}&org=${org}&i=${i}`, key, Buffer.byteLength(body), [[BEHAVIOUR_HEADER, behaviour]]);
					readers.push(nonReader(server.url, head, body));
				}
			});
			await within(Promise.all(readers.map((reader) => reader.sent)), 10_000, "the non-reading clients' requests sent");
			await attackInPlace(origin, tag, 2 * PER_ATTACKER);
			const inPlace = Date.now();
			await expectEverySlotHeld(server, keys.third, tag);
			const bound = CLIENT_IDLE_SECONDS * 1000 + SLACK_MS;
			const served = await probeUntilServed(server, keys.third, `${tag}-third`, inPlace, bound);
			expectServedWithin(served, bound, `after ${2 * PER_ATTACKER} non-reading clients took every slot`);
			// The origin's answers to the clients that were let go are cancelled, not left running.
			await settledOutcome(origin, tag, (record) => record.responseOutcome, "the non-reading clients' answers end");
			const outcomes = attackRecords(origin, tag).map((record) => record.responseOutcome);
			expect(outcomes).toEqual(outcomes.map(() => "cut"));
			// Their usage is settled as for clients that left: nothing stays claimed for the attackers.
			for (const org of keys.attackerOrgs) {
				const view = await until(async () => {
					const seen = await orgView(server, org);
					return seen.claims?.outstanding === 0 ? seen : undefined;
				}, `${org}'s claims settling once its non-reading clients were let go`, 15_000);
				expect(view.claims?.held, `${org}: nothing held once its clients were let go`).toMatchObject({ requests: 0, input_tokens: 0, output_tokens: 0, usd: 0 });
			}
		} finally {
			for (const reader of readers) reader.destroy();
		}
	});
});

// ------------------------------------------------------------------------------------------------

/** Two attacking organisations' uploads: the first on /v1/messages (read as it passes), the second on count_tokens (untouched). */
function uploadPaths(tag: string, org: number): string {
	return org === 0 ? `/v1/messages?case=${tag}` : `/v1/messages/count_tokens?case=${tag}`;
}

/** Starts `PER_ATTACKER` uploads per attacker: `head` declares `declared` bytes; `first` is what is sent at once. */
function startUploads(server: LocalServer, attackers: [string, string], prefix: string, declared: number, first: string): { exchange: RawExchange; sentAt: number; path: string }[] {
	const uploads: { exchange: RawExchange; sentAt: number; path: string }[] = [];
	attackers.forEach((key, org) => {
		for (let i = 0; i < PER_ATTACKER; i++) {
			const path = `${uploadPaths(prefix, org)}&org=${org}&i=${i}`;
			uploads.push({ ...startUpload(server.url, postHead(path, key, declared), first), path });
		}
	});
	return uploads;
}

/** Awaits every upload's answer (bounded), and answers each with how long after its head it came. */
async function answersOf(uploads: { exchange: RawExchange; sentAt: number; path: string }[], ms: number, what: string) {
	return within(
		Promise.all(
			uploads.map(async (upload) => {
				const response = await upload.exchange.response;
				return { path: upload.path, answer: fromRaw(response), afterMs: Date.now() - upload.sentAt };
			}),
		),
		ms,
		what,
	);
}

function expect408sWithin(answers: { path: string; answer: Answer; afterMs: number }[], boundMs: number): void {
	for (const { path, answer, afterMs } of answers) {
		expectEnvelope(answer, 408, "invalid_request_error");
		expect(afterMs, `${path}'s 408 came ${afterMs} ms after its head (bound ${boundMs} ms)`).toBeLessThanOrEqual(boundMs);
	}
}

/** The origin never received any of the uploads whole: each ended `aborted` (its connection closed). */
async function expectNoBodyWhole(origin: SlotsOrigin, tag: string): Promise<void> {
	await settledOutcome(origin, tag, (record) => record.bodyOutcome, `the uploads (case=${tag}) end`);
	const outcomes = attackRecords(origin, tag).map((record) => `${record.url}: ${record.bodyOutcome} after ${record.bodyBytes} bytes`);
	expect(outcomes).toHaveLength(2 * PER_ATTACKER);
	expect(outcomes.filter((line) => !line.includes(": aborted "))).toEqual([]);
}

describe("uploads of stated length that stall (declared 100 bytes, 13 sent) at the default minimum rate", () => {
	// No route option: min_body_rate_bytes_per_second's default (240) and the 5 s grace apply,
	// trusted Content-Length (untouched bodies) included.
	const stack = stackPerDescribe((origin) => ["--origin", origin, ...OVERLOAD]);

	it("answers each stalled client 408 within grace + length / rate + 3 s, never delivers a body whole, and serves a third organisation 200 meanwhile", async () => {
		const { server, origin } = stack;
		const keys = await threeOrganisations(server, "stall");
		const TAG = "stalled";
		const declared = 100;
		const uploads = startUploads(server, keys.attackers, TAG, declared, '{"model":"cla');
		try {
			await attackInPlace(origin, TAG, 2 * PER_ATTACKER);
			const inPlace = Date.now();
			await expectEverySlotHeld(server, keys.third, "stalled");
			const bound = rateDeadlineMs(declared) + RATE_BOUND_MS;
			const [answers, served] = await Promise.all([
				answersOf(uploads, bound + SLACK_MS, "an answer to every stalled upload"),
				probeUntilServed(server, keys.third, "stalled-third", inPlace, bound + SLACK_MS),
			]);
			expect408sWithin(answers, bound + MEASURE_SLACK_MS);
			expectServedWithin(served, bound + SLACK_MS, "while stalled uploads of stated length held every slot");
		} finally {
			for (const upload of uploads) upload.exchange.destroy();
		}
		await expectNoBodyWhole(origin, TAG);
	});
});

describe("uploads that drip under min_body_rate_bytes_per_second", () => {
	const stack = stackPerDescribe((origin) => [
		...stackArgs({
			origin,
			tiers: {},
			orgs: {},
			routes: {
				"messages.create": { min_body_rate_bytes_per_second: MIN_RATE },
				"messages.count_tokens": { min_body_rate_bytes_per_second: MIN_RATE },
			},
		}),
		...OVERLOAD,
	]);

	it("answers each client dripping 50 bytes/s 408 within grace + length / rate + 3 s, never delivers a body whole, and serves a third organisation 200 meanwhile", async () => {
		const { server, origin } = stack;
		const keys = await threeOrganisations(server, "drip");
		const body = messageBody(800);
		const TAG = "drip";
		const uploads = startUploads(server, keys.attackers, TAG, body.byteLength, body.subarray(0, 10).toString());
		// 5 bytes every 100 ms: 50 bytes/s, the whole body would take 16 s; under either reading of the
		// minimum rate it is due at about 8.4 s (rateDeadlineMs), and 408 by 11.4 s.
		const stops = uploads.map((upload) => drip(upload.exchange, body.subarray(10), 5, 100));
		try {
			await attackInPlace(origin, TAG, 2 * PER_ATTACKER);
			const inPlace = Date.now();
			await expectEverySlotHeld(server, keys.third, "drip");
			const bound = rateDeadlineMs(body.byteLength) + RATE_BOUND_MS;
			expect(bound + MEASURE_SLACK_MS, "the bound ends before a dripping body could be whole").toBeLessThan(((body.byteLength - 10) / 50) * 1000);
			const [answers, served] = await Promise.all([
				answersOf(uploads, bound + SLACK_MS, "an answer to every dripping upload"),
				probeUntilServed(server, keys.third, "drip-third", inPlace, bound + SLACK_MS),
			]);
			expect408sWithin(answers, bound + MEASURE_SLACK_MS);
			expectServedWithin(served, bound + SLACK_MS, "while uploads dripping under the minimum rate held every slot");
		} finally {
			for (const stop of stops) stop();
			for (const upload of uploads) upload.exchange.destroy();
		}
		await expectNoBodyWhole(origin, TAG);
	});

	it("serves an upload that arrives above the minimum rate although it takes longer than the grace", async () => {
		const { server } = stack;
		const key = await createKey(server, freshOrg("slots_brisk"), ["messages"]);
		const body = messageBody(4000);
		// 50 bytes every 100 ms: 500 bytes/s (over 240), about 8 s in all.
		const upload = startUpload(server.url, postHead("/v1/messages/count_tokens?case=brisk&", key, body.byteLength), body.subarray(0, 50));
		const stop = drip(upload.exchange, body.subarray(50), 50, 100);
		try {
			const response = fromRaw(await within(upload.exchange.response, 30_000, "the answer to an upload above the minimum rate"));
			expect(response.status, response.text).toBe(200);
		} finally {
			stop();
			upload.exchange.destroy();
		}
	});
});

// ------------------------------------------------------------------------------------------------

/** What a body of `encoding` decodes to (identity when absent). */
function decoded(body: Buffer, encoding: string | undefined): Buffer {
	if (encoding === undefined || encoding === "" || encoding === "identity") return body;
	if (encoding === "gzip") return gunzipSync(body);
	if (encoding === "deflate") return inflateSync(body);
	if (encoding === "br") return brotliDecompressSync(body);
	throw new Error(`an unexpected content-encoding: ${encoding}`);
}

interface SseEvent {
	event: string;
	data: Record<string, unknown>;
}

function sseEvents(text: string): SseEvent[] {
	return text
		.split(/\r?\n\r?\n/)
		.filter((block) => block.trim() !== "")
		.map((block) => {
			const lines = block.split(/\r?\n/);
			const event = lines.find((line) => line.startsWith("event:"))?.slice(6).trim() ?? "message";
			const data = lines
				.filter((line) => line.startsWith("data:"))
				.map((line) => line.slice(5).trim())
				.join("\n");
			return { event, data: JSON.parse(data) as Record<string, unknown> };
		})
		.filter((event) => event.event !== "ping");
}

const ENCODINGS = ["gzip", "deflate", "br"] as const;
const SHAPES = [
	["stated length, small (2 KB)", "length", 2000],
	["chunked, small (2 KB)", "chunked", 2000],
	["stated length, large (600 KB)", "length", 600 * 1024],
	["chunked, large (600 KB)", "chunked", 600 * 1024],
] as const;
const ENCODED_CASES = ENCODINGS.flatMap((encoding) => SHAPES.map(([shape, framing, bytes]) => ({ encoding, shape, framing, bytes })));

describe("encoded answers pass, with their usage charged", () => {
	const orgs = new Map<string, string>([...ENCODED_CASES.map((c) => `${c.encoding}-${c.framing}-${c.bytes}`), "gzip-sse"].map((name) => [name, freshOrg(`slots_enc_${name.replaceAll("-", "_")}`)]));
	const stack = stackPerDescribe((origin) => [
		...stackArgs({ origin, tiers: { slots_priced: PRICED_TIER }, orgs: Object.fromEntries([...orgs.values()].map((org) => [org, "slots_priced"])) }),
	]);

	it.each(ENCODED_CASES)("a $encoding JSON message ($shape) reaches fetch and a raw client whole, and its usage is charged", async ({ encoding, framing, bytes }) => {
		const { server, origin } = stack;
		const org = orgs.get(`${encoding}-${framing}-${bytes}`) as string;
		const key = await createKey(server, org, ["messages"]);
		const prefix = `/v1/messages?case=encoded-${encoding}-${framing}-${bytes}&`;
		const body = messageBody(200).toString();
		const originHeaders: [string, string][] = [
			[BEHAVIOUR_HEADER, BEHAVIOUR.encodedJson],
			[ENCODING_HEADER, encoding],
			[FRAMING_HEADER, framing],
			[TEXT_BYTES_HEADER, String(bytes)],
		];
		const viaFetch = await fetchAnswer(`${server.url}${prefix}client=fetch`, {
			method: "POST",
			headers: { "x-api-key": key, "anthropic-version": "2023-06-01", "content-type": "application/json", ...Object.fromEntries(originHeaders) },
			body,
		});
		const raw = await sendRaw(
			server.url,
			requestHead("POST", `${prefix}client=raw`, [
				["x-api-key", key],
				["anthropic-version", "2023-06-01"],
				["content-type", "application/json"],
				["accept-encoding", "gzip, deflate, br"],
				["content-length", String(Buffer.byteLength(body))],
				...originHeaders,
			]),
			body,
		);
		const records = origin.at(prefix);
		expect(records).toHaveLength(2);
		const expectedText = records[0]?.text;
		expect(viaFetch.status, viaFetch.text.slice(0, 500)).toBe(200);
		expect((JSON.parse(viaFetch.text) as { content: { text: string }[] }).content[0]?.text).toBe(expectedText);
		expect(raw.status, raw.text().slice(0, 500)).toBe(200);
		expect(raw.complete).toBe(true);
		const rawJson = JSON.parse(decoded(raw.body, raw.headers["content-encoding"]).toString("utf8")) as { content: { text: string }[]; usage: unknown };
		expect(rawJson.content[0]?.text).toBe(expectedText);
		expect(rawJson.usage).toEqual(records[1]?.reported);
		const expected = records.reduce((sum, record) => sum + costNanos(record.reported ?? { input_tokens: 0, output_tokens: 0 }, PRICED), 0);
		const spent = await spendWhen(server, org, (nanos) => nanos === expected);
		expect(spent, `the organisation is charged the usage both answers reported (${OUTPUT_TOKENS} output tokens each)`).toBe(expected);
	});

	it("a gzipped event stream reaches fetch and a raw client event by event, and its usage is charged", async () => {
		const { server, origin } = stack;
		const org = orgs.get("gzip-sse") as string;
		const key = await createKey(server, org, ["messages"]);
		const prefix = "/v1/messages?case=gzip-sse&";
		const body = JSON.stringify({ model: "claude-test-1", max_tokens: 16, stream: true, messages: [{ role: "user", content: "hi" }] });
		const viaFetch = await fetchAnswer(`${server.url}${prefix}client=fetch`, {
			method: "POST",
			headers: { "x-api-key": key, "anthropic-version": "2023-06-01", "content-type": "application/json", [BEHAVIOUR_HEADER]: BEHAVIOUR.gzipStream },
			body,
		});
		const raw = await sendRaw(
			server.url,
			requestHead("POST", `${prefix}client=raw`, [
				["x-api-key", key],
				["anthropic-version", "2023-06-01"],
				["content-type", "application/json"],
				["accept-encoding", "gzip, deflate, br"],
				["content-length", String(Buffer.byteLength(body))],
				[BEHAVIOUR_HEADER, BEHAVIOUR.gzipStream],
			]),
			body,
		);
		const wanted = ["message_start", "content_block_start", ...STREAM_DELTAS.map(() => "content_block_delta"), "content_block_stop", "message_delta", "message_stop"];
		const texts = (events: SseEvent[]) =>
			events
				.filter((event) => event.event === "content_block_delta")
				.map((event) => (event.data.delta as { text: string }).text)
				.join("");
		expect(viaFetch.status, viaFetch.text.slice(0, 500)).toBe(200);
		expect(viaFetch.headers["content-type"]).toMatch(/^text\/event-stream/);
		const fetchEvents = sseEvents(viaFetch.text);
		expect(fetchEvents.map((event) => event.event)).toEqual(wanted);
		expect(texts(fetchEvents)).toBe(STREAM_DELTAS.join(""));
		expect(raw.status, raw.text().slice(0, 500)).toBe(200);
		expect(raw.complete).toBe(true);
		const rawEvents = sseEvents(decoded(raw.body, raw.headers["content-encoding"]).toString("utf8"));
		expect(rawEvents.map((event) => event.event)).toEqual(wanted);
		expect(texts(rawEvents)).toBe(STREAM_DELTAS.join(""));
		const finalDelta = rawEvents.find((event) => event.event === "message_delta");
		expect(finalDelta?.data.usage).toEqual({ output_tokens: OUTPUT_TOKENS });
		const records = origin.at(prefix);
		expect(records).toHaveLength(2);
		const expected = records.reduce((sum, record) => sum + costNanos(record.reported ?? { input_tokens: 0, output_tokens: 0 }, PRICED), 0);
		const spent = await spendWhen(server, org, (nanos) => nanos === expected);
		expect(spent, `the organisation is charged the usage both streams reported (${OUTPUT_TOKENS} output tokens each)`).toBe(expected);
	});
});
