import { describe, expect, it } from "vitest";
import type { SinkRecord } from "./fixtures/sink-origin";
import { callGuardToSink, chunkedStream, patternBytes, readEnvelope, sha256Hex, sinkRecordIfAny, startGuard } from "./helpers";

function post(body: ReadableStream<Uint8Array> | Uint8Array | string, headers: Record<string, string> = {}): RequestInit {
	return { method: "POST", body, headers, duplex: "half" } as RequestInit;
}

async function gzip(bytes: Uint8Array | { zeros: number }): Promise<Uint8Array> {
	const stream = new CompressionStream("gzip");
	const writer = stream.writable.getWriter();
	const writing = (async () => {
		if (bytes instanceof Uint8Array) await writer.write(bytes);
		else {
			const chunk = new Uint8Array(1024 * 1024);
			for (let written = 0; written < bytes.zeros; written += chunk.byteLength) await writer.write(chunk);
		}
		await writer.close();
	})();
	const out = new Uint8Array(await new Response(stream.readable).arrayBuffer());
	await writing;
	return out;
}

/** `bytes` as a byte stream in 16 KiB chunks, counting how many the guard pulled. */
function counted(bytes: Uint8Array) {
	let offset = 0;
	const stream = new ReadableStream({
		type: "bytes",
		pull(controller) {
			if (offset >= bytes.byteLength) return controller.close();
			controller.enqueue(bytes.slice(offset, offset + 16 * 1024));
			offset += 16 * 1024;
		},
	}) as ReadableStream<Uint8Array>;
	return { stream, pulled: () => Math.min(offset, bytes.byteLength) };
}

const MIB = 1024 * 1024;
const gzipRoute = [{ name: "upload", methods: ["POST"], path: "/v1/files", max_body_bytes: MIB, group: "files", content_encodings: ["gzip"] }];

describe("a compressed body", () => {
	it("reaches the origin decoded, whole", async () => {
		const bytes = patternBytes(600 * 1024, 7);
		const response = await callGuardToSink("/v1/files", post(chunkedStream(await gzip(bytes)), { "content-encoding": "gzip" }), { ROUTES: gzipRoute });
		expect(response.status).toBe(200);
		const record = (await response.json()) as SinkRecord;
		expect(record.bytes).toBe(bytes.byteLength);
		expect(record.sha256).toBe(await sha256Hex(bytes));
		expect(record.headers["content-encoding"]).toBeUndefined();
	});

	it("that decodes past the cap (a bomb) is refused 413 having read a sliver of it, and the source is cancelled", async () => {
		const bomb = await gzip({ zeros: 256 * MIB });
		expect(bomb.byteLength).toBeGreaterThan(200_000);
		const body = counted(bomb);
		const response = await callGuardToSink("/v1/files", post(body.stream, { "content-encoding": "gzip" }), { ROUTES: gzipRoute });
		expect(response.status).toBe(413);
		const envelope = await readEnvelope(response);
		expect(envelope.error.type).toBe("request_too_large");
		// 1 MiB decoded is about 1 KB of this gzip; what was pulled is that and the stream's chunking.
		expect(body.pulled()).toBeLessThan(64 * 1024);
		const record = await sinkRecordIfAny(envelope.request_id);
		if (record !== undefined) {
			expect(record.outcome).toBe("failed");
			expect(record.bytes).toBeLessThanOrEqual(MIB);
		}
	});
});

/** `size` bytes every `everyMs`, for `total` bytes (or forever), as a byte stream. */
function drip(size: number, everyMs: number, total = Number.POSITIVE_INFINITY): ReadableStream<Uint8Array> {
	let sent = 0;
	return new ReadableStream({
		type: "bytes",
		async pull(controller) {
			if (sent >= total) return controller.close();
			if (sent > 0) await new Promise((resolve) => setTimeout(resolve, everyMs));
			const chunk = new Uint8Array(Math.min(size, total - sent)).fill(0x61);
			sent += chunk.byteLength;
			controller.enqueue(chunk);
		},
	}) as ReadableStream<Uint8Array>;
}

const slowRoute = [
	{ name: "upload", methods: ["POST"], path: "/v1/files", max_body_bytes: MIB, group: "files", min_body_rate_bytes_per_second: 1000, body_rate_grace_seconds: 0.3 },
];

describe("a minimum upload rate", () => {
	it("answers 408 to a chunked body dripping under it after the grace, and the origin never gets it whole", async () => {
		const started = Date.now();
		const response = await callGuardToSink("/v1/files", post(drip(20, 100)), { ROUTES: slowRoute });
		expect(response.status).toBe(408);
		const envelope = await readEnvelope(response);
		expect(envelope.error.message).toBe("The request body arrived slower than 1000 bytes a second; the upload was cancelled.");
		expect(Date.now() - started).toBeLessThan(3000);
		const record = await sinkRecordIfAny(envelope.request_id);
		if (record !== undefined) expect(record.outcome).toBe("failed");
	});

	it("lets a body at a pace above it through whole", async () => {
		const response = await callGuardToSink("/v1/files", post(drip(400, 100, 4000)), { ROUTES: slowRoute });
		expect(response.status).toBe(200);
		const record = (await response.json()) as SinkRecord;
		expect(record.bytes).toBe(4000);
	});

	it("answers 408 to an untouched body of stated length that stalls, within the grace and its length at the rate", async () => {
		const request = new Request("https://guard.test/v1/files", post(drip(13, 60_000, 1000)));
		request.headers.set("content-length", "1000");
		const started = Date.now();
		const response = await callGuardToSink(request, undefined, { ROUTES: slowRoute });
		const elapsed = Date.now() - started;
		expect(response.status).toBe(408);
		const envelope = await readEnvelope(response);
		expect(envelope.error.message).toContain("slower than 1000 bytes a second");
		// Due at 0.3 s + 1000 bytes at 1000 bytes a second.
		expect(elapsed).toBeGreaterThanOrEqual(1200);
		expect(elapsed).toBeLessThan(2500);
		const record = await sinkRecordIfAny(envelope.request_id);
		if (record !== undefined) expect(record.outcome).not.toBe("complete");
	});

	it("keeps an origin's answer given before it took the body, past the upload's due time", async () => {
		// The origin answers at once, without reading the body, and its answer goes on past the time
		// the stalled upload was due (0.3 s + 1000 bytes at 1000 bytes a second).
		let finish: () => void = () => undefined;
		const finished = new Promise<void>((resolve) => {
			finish = resolve;
		});
		const encoder = new TextEncoder();
		// As a subrequest does, its answer breaks off when the guard aborts the fetch.
		const early = {
			fetch: async (_url: string, init: RequestInit) =>
				new Response(
					new ReadableStream<Uint8Array>({
						async start(controller) {
							init.signal?.addEventListener("abort", () => controller.error(new Error("the guard aborted the fetch")));
							controller.enqueue(encoder.encode("first,"));
							await finished;
							if (init.signal?.aborted) return;
							controller.enqueue(encoder.encode("last"));
							controller.close();
						},
					}),
					{ status: 200, headers: { "content-type": "text/plain" } },
				),
		};
		const request = new Request("https://guard.test/v1/files", post(drip(13, 60_000, 1000)));
		request.headers.set("content-length", "1000");
		const { response, settled } = await startGuard(request, undefined, { ORIGIN: early as never, ROUTES: slowRoute });
		expect(response.status).toBe(200);
		const reader = (response.body as ReadableStream<Uint8Array>).getReader();
		const decoder = new TextDecoder();
		let text = decoder.decode((await reader.read()).value);
		// A bound that is a time: the answer must still be flowing once the upload's due time has passed.
		await new Promise((resolve) => setTimeout(resolve, 1600));
		finish();
		for (let next = await reader.read(); !next.done; next = await reader.read()) text += decoder.decode(next.value);
		expect(text).toBe("first,last");
		await settled();
	});

	it("passes an untouched body of stated length at speed with its content-length", async () => {
		const bytes = patternBytes(3 * MIB, 5);
		const request = new Request("https://guard.test/v1/files", post(chunkedStream(bytes)));
		request.headers.set("content-length", String(bytes.byteLength));
		const response = await callGuardToSink(request);
		const record = (await response.json()) as SinkRecord;
		expect(record.headers["content-length"]).toBe(String(bytes.byteLength));
		expect(record.sha256).toBe(await sha256Hex(bytes));
	});
});
