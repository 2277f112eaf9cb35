import { describe, expect, it } from "vitest";
import { drainBody } from "../src/lib/drain";

function source(chunks: number, chunkSize: number, stallAfter = Number.POSITIVE_INFINITY) {
	let pulled = 0;
	let cancelled = false;
	const stream = new ReadableStream<Uint8Array>({
		async pull(controller) {
			if (pulled >= stallAfter) return new Promise<void>(() => undefined);
			if (pulled >= chunks) return controller.close();
			pulled++;
			controller.enqueue(new Uint8Array(chunkSize));
		},
		cancel() {
			cancelled = true;
		},
	});
	return { stream, cancelled: () => cancelled };
}

describe("the lingering drain", () => {
	it("reads a finished upload to its end", async () => {
		const body = source(10, 1000);
		expect(await drainBody(body.stream, { maxBytes: 1e9, maxMs: 1000 })).toMatchObject({ bytes: 10_000, stopped: "end" });
		expect(body.cancelled()).toBe(false);
	});

	it("stops at the byte bound and cancels the rest", async () => {
		const body = source(1_000_000, 1000);
		expect(await drainBody(body.stream, { maxBytes: 50_000, maxMs: 10_000 })).toMatchObject({ bytes: 50_000, stopped: "max-bytes" });
		expect(body.cancelled()).toBe(true);
	});

	it("stops at the time bound when the client stalls, and cancels the rest", async () => {
		const body = source(1_000_000, 1000, 3);
		const result = await drainBody(body.stream, { maxBytes: 1e9, maxMs: 30 });
		expect(result).toMatchObject({ bytes: 3000, stopped: "max-time" });
		expect(body.cancelled()).toBe(true);
	});

	it("stops at the time bound even while the client keeps sending", async () => {
		let clock = 0;
		const body = source(1_000_000, 1000);
		// The clock moves 5 ms a read; the stream never stalls, so only the clock can stop it.
		const result = await drainBody(body.stream, { maxBytes: 1e9, maxMs: 100 }, () => {
			clock += 5;
			return clock;
		});
		expect(result.stopped).toBe("max-time");
		expect(result.bytes).toBe(20_000);
		expect(body.cancelled()).toBe(true);
	});

	it("reports a client that broke off", async () => {
		const stream = new ReadableStream<Uint8Array>({
			pull(controller) {
				controller.error(new Error("client disconnected"));
			},
		});
		expect(await drainBody(stream, { maxBytes: 1e9, maxMs: 1000 })).toMatchObject({ bytes: 0, stopped: "error" });
	});
});
