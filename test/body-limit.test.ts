import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { parseRouteTable } from "../src/config/route-table";
import type { SinkRecord } from "./fixtures/sink-origin";
import { LINGER_BOUNDS } from "../src/body-limit/linger";
import { callGuardToSink, chunkedStream, patternBytes, readEnvelope, sha256Hex, sinkRecord, sinkRecordIfAny } from "./helpers";

/**
 * A body of `length` zero bytes in 1 MiB chunks, counting how many bytes the guard pulled. A byte
 * stream, like a body from the network.
 */
function zeros(length: number) {
	let sent = 0;
	const stream = new ReadableStream({
		type: "bytes",
		pull(controller) {
			if (sent >= length) return controller.close();
			const size = Math.min(1024 * 1024, length - sent);
			sent += size;
			controller.enqueue(new Uint8Array(size));
		},
	}) as ReadableStream<Uint8Array>;
	return { stream, pulled: () => sent };
}

function post(body: ReadableStream<Uint8Array> | Uint8Array | string, headers: Record<string, string> = {}): RequestInit {
	return { method: "POST", body, headers, duplex: "half" } as RequestInit;
}

async function expect413(response: Response, cap: number): Promise<string> {
	expect(response.status).toBe(413);
	const body = await readEnvelope(response);
	expect(body.error.type).toBe("request_too_large");
	expect(body.error.message).toContain(`limit of ${cap} bytes`);
	expect(body.request_id).toBe(response.headers.get("request-id"));
	expect(response.headers.get("x-should-retry")).toBe("false");
	return body.request_id;
}

/** The origin never held the whole oversized body: it saw nothing, or an upload that failed. */
async function originSawNoWholeBody(requestId: string, cap: number): Promise<void> {
	const record = await sinkRecordIfAny(requestId);
	if (record === undefined) return;
	expect(record.outcome).toBe("failed");
	expect(record.bytes).toBeLessThanOrEqual(cap);
}

const small = [{ name: "upload", methods: ["POST"], path: "/v1/files", max_body_bytes: 1000, group: "files" }];

describe("declared length over the cap", () => {
	it("answers 413 at once, without reading the body or contacting the origin", async () => {
		const body = zeros(40 * 1024 * 1024);
		const headers = { "content-length": String(40 * 1024 * 1024), expect: "100-continue" };
		const response = await callGuardToSink("/v1/messages", post(body.stream, headers));
		const id = await expect413(response, 33_554_432);
		expect((await sinkRecordIfAny(id)) ?? "no record").toBe("no record");
		expect(body.pulled()).toBe(0);
	});

	it("discards the declared body after answering when the client did not wait for 100-continue", async () => {
		const body = zeros(40 * 1024 * 1024);
		const response = await callGuardToSink("/v1/messages", post(body.stream, { "content-length": String(40 * 1024 * 1024) }));
		const id = await expect413(response, 33_554_432);
		expect(body.pulled()).toBe(40 * 1024 * 1024);
		expect((await sinkRecordIfAny(id)) ?? "no record").toBe("no record");
	});

	it("names the cap in bytes and in MB", async () => {
		const response = await callGuardToSink("/v1/messages", post("x", { "content-length": "33554433", "content-type": "application/json" }));
		expect(response.status).toBe(413);
		expect((await readEnvelope(response)).error.message).toBe(
			"The request body (33554433 bytes) is over this endpoint's limit of 33554432 bytes (32 MB).",
		);
	});

	it("answers 400 to a malformed content-length", async () => {
		for (const value of ["12abc", "5, 6", "-1"]) {
			const request = new Request("https://guard.test/v1/messages", {
				method: "POST",
				body: "hello",
				headers: { "content-type": "application/json" },
			});
			request.headers.set("content-length", value);
			const response = await callGuardToSink(request);
			expect(response.status).toBe(400);
			expect((await readEnvelope(response)).error.message).toContain("content-length");
		}
	});
});

describe("streamed length over the cap", () => {
	it("stops the upload to the origin and answers 413 once the count passes the cap", async () => {
		const body = zeros(3000);
		const response = await callGuardToSink("/v1/files", post(body.stream), { ROUTES: small });
		await originSawNoWholeBody(await expect413(response, 1000), 1000);
	});

	it("reads one byte past the cap before answering (the README's promise), and its log line says so", async () => {
		const lines: unknown[] = [];
		vi.spyOn(console, "log").mockImplementation((line: unknown) => void lines.push(line));
		const body = zeros(64 * 1024 * 1024);
		const response = await callGuardToSink("/v1/messages", post(body.stream));
		const id = await expect413(response, 33_554_432);
		await originSawNoWholeBody(id, 33_554_432);
		const line = lines.find((entry) => (entry as { request_id?: string }).request_id === id) as {
			decisions: { cap: { cap: number; outcome: string; bytes_read: number } };
		};
		expect(line.decisions.cap.outcome).toBe("over-cap");
		expect(line.decisions.cap.cap).toBe(33_554_432);
		// The source sends 1 MiB chunks; the pump's last slice is sized to what is left plus one byte.
		expect(line.decisions.cap.bytes_read).toBe(33_554_432 + 1);
		vi.restoreAllMocks();
	});

	it("then reads and discards the rest of the upload before ending the answer", async () => {
		const body = zeros(64 * 1024 * 1024);
		const response = await callGuardToSink("/v1/messages", post(body.stream));
		await expect413(response, 33_554_432);
		expect(body.pulled()).toBe(64 * 1024 * 1024);
	});

	it("stops discarding at the lingering bound, so an endless upload cannot hold the guard", async () => {
		const body = zeros(Number.MAX_SAFE_INTEGER);
		const response = await callGuardToSink("/v1/messages", post(body.stream));
		await expect413(response, 33_554_432);
		const pastCap = body.pulled() - 33_554_432;
		expect(pastCap).toBeGreaterThanOrEqual(LINGER_BOUNDS.maxBytes);
		expect(pastCap).toBeLessThanOrEqual(LINGER_BOUNDS.maxBytes + 2 * 1024 * 1024);
	});
});

describe("declared length within the cap", () => {
	it("reaches the origin with the same content-length, not chunked", async () => {
		const bytes = patternBytes(5 * 1024 * 1024, 3);
		const request = new Request("https://guard.test/v1/files", post(chunkedStream(bytes)));
		request.headers.set("content-length", String(bytes.byteLength));
		const response = await callGuardToSink(request);
		const record = (await response.json()) as SinkRecord;
		expect(record.headers["content-length"]).toBe(String(bytes.byteLength));
		expect(record.headers["transfer-encoding"]).toBeUndefined();
		expect(record.sha256).toBe(await sha256Hex(bytes));
	});

	it("stays chunked when the client declared no length", async () => {
		const response = await callGuardToSink("/v1/files", post(chunkedStream(patternBytes(1000))));
		const record = (await response.json()) as SinkRecord;
		expect(record.headers["content-length"]).toBeUndefined();
		expect(record.bytes).toBe(1000);
	});
});

describe("a body that lies about its length (a service-binding caller, TRUST_DECLARED_LENGTH off)", () => {
	// From the network the runtime frames a body by its Content-Length; another Worker calling the
	// guard through a service binding could send any stream, so such deployments count every body.
	async function lying(declared: number, actual: number) {
		const request = new Request("https://guard.test/v1/files", post(chunkedStream(patternBytes(actual), 100)));
		request.headers.set("content-length", String(declared));
		return callGuardToSink(request, undefined, { TRUST_DECLARED_LENGTH: "false" });
	}

	it("answers 400 and fails the upload when the body is longer than declared", async () => {
		const response = await lying(500, 600);
		expect(response.status).toBe(400);
		const body = await readEnvelope(response);
		expect(body.error.message).toBe("The request body is longer than its content-length of 500 bytes.");
		await originSawNoWholeBody(body.request_id, 500);
	});

	it("answers 400 and fails the upload when the body is shorter than declared", async () => {
		const response = await lying(600, 500);
		expect(response.status).toBe(400);
		const body = await readEnvelope(response);
		expect(body.error.message).toBe("The request body ended after 500 of the 600 bytes its content-length declared.");
		await originSawNoWholeBody(body.request_id, 500);
	});
});

describe("a client that breaks off mid-upload", () => {
	it("gets the upload to the origin cancelled, never ended as if whole", async () => {
		let sent = 0;
		const broken = new ReadableStream({
			type: "bytes",
			pull(controller) {
				if (sent >= 3 * 1024 * 1024) return controller.error(new Error("client disconnected"));
				sent += 512 * 1024;
				controller.enqueue(new Uint8Array(512 * 1024));
			},
		}) as ReadableStream<Uint8Array>;
		const response = await callGuardToSink("/v1/files", post(broken));
		expect(response.status).toBe(400);
		const body = await readEnvelope(response);
		expect(body.error.message).toContain("could not be read to its end");
		const record = await sinkRecord(body.request_id);
		expect(record.outcome).toBe("failed");
		expect(record.bytes).toBeGreaterThan(0);
	});
});

describe("exact boundaries of every default route", () => {
	// A 256 MiB batch claims 64 Mi input tokens: the default tier's 200 M a minute would refuse the
	// third upload in a minute with 429 before the cap could answer, so the caps are tried on a roomier tier.
	const tiers = env.TIERS as Record<string, Record<string, unknown>>;
	const roomy = { TIERS: { ...tiers, default: { ...tiers.default, input_tokens_per_minute: 10_000_000_000 } } };
	const routes = parseRouteTable(env.ROUTES).flatMap((route) =>
		route.methods.filter((method) => method !== "GET" && method !== "HEAD").map((method) => ({ route, method })),
	);
	const concrete = (path: string) => path.replace(/:[a-z_]+/g, "id_1");

	it.each(routes.map(({ route, method }) => [method, route.path, route.maxBodyBytes] as const))(
		"%s %s: exactly %i bytes pass and one more is refused, declared or streamed",
		async (method, path, cap) => {
			const url = concrete(path);
			for (const declare of [true, false]) {
				const exact = new Request(`https://guard.test${url}`, { method, body: zeros(cap).stream, duplex: "half" } as RequestInit);
				if (declare) exact.headers.set("content-length", String(cap));
				const passed = await callGuardToSink(exact, undefined, roomy);
				if (cap === 0 && !declare) {
					// A route that takes no body refuses any framing of one, an empty chunked body included.
					await expect(sinkRecord(await expect413(passed, cap))).rejects.toThrow("no record");
				} else {
					expect(passed.status).toBe(200);
					const record = (await passed.json()) as SinkRecord;
					expect([record.bytes, record.outcome]).toEqual([cap, "complete"]);
				}

				const over = new Request(`https://guard.test${url}`, { method, body: zeros(cap + 1).stream, duplex: "half" } as RequestInit);
				if (declare) over.headers.set("content-length", String(cap + 1));
				const refused = await callGuardToSink(over, undefined, roomy);
				const refusedId = await expect413(refused, cap);
				await originSawNoWholeBody(refusedId, cap);
				// Decided from the request line and headers: an origin never executes a refused DELETE.
				if (cap === 0) await expect(sinkRecord(refusedId)).rejects.toThrow("no record");
			}
		},
		120_000,
	);
});

describe("multipart file uploads", () => {
	function multipart(fileBytes: number): Uint8Array {
		const head = '--b\r\ncontent-disposition: form-data; name="file"; filename="a.bin"\r\ncontent-type: application/octet-stream\r\n\r\n';
		const tail = "\r\n--b--\r\n";
		const encoder = new TextEncoder();
		const out = new Uint8Array(head.length + fileBytes + tail.length);
		out.set(encoder.encode(head), 0);
		out.set(encoder.encode(tail), head.length + fileBytes);
		return out;
	}

	it("count the whole body, boundaries and part headers included", async () => {
		const fits = multipart(1000 - multipart(0).byteLength);
		expect(fits.byteLength).toBe(1000);
		const ok = await callGuardToSink("/v1/files", post(chunkedStream(fits, 64), { "content-type": "multipart/form-data; boundary=b" }), {
			ROUTES: small,
		});
		expect(ok.status).toBe(200);
		// A file part of 990 bytes fits under the cap on its own, but the whole body does not.
		const over = await callGuardToSink(
			"/v1/files",
			post(chunkedStream(multipart(990), 64), { "content-type": "multipart/form-data; boundary=b" }),
			{ ROUTES: small },
		);
		await expect413(over, 1000);
	});
});

describe("any early answer to an upload", () => {
	it("discards the unread body before ending, so the client can read a 404", async () => {
		const body = zeros(8 * 1024 * 1024);
		const response = await callGuardToSink("/v1/nowhere", post(body.stream));
		expect(response.status).toBe(404);
		await readEnvelope(response);
		expect(body.pulled()).toBe(8 * 1024 * 1024);
	});
});
