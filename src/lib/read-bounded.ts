import { TIMED_OUT, within } from "./within";

/** A body that sent nothing for longer than its reader would wait. */
export class BodyStalledError extends Error {
	readonly idleMs: number;
	constructor(idleMs: number) {
		super(`the body sent nothing for ${idleMs} ms`);
		this.name = "BodyStalledError";
		this.idleMs = idleMs;
	}
}

/**
 * Reads at most `limit` bytes of a body as text and cancels the rest. Returns `undefined` when the
 * body is longer than the limit, so a caller never acts on a truncated document. With `idleMs`, a
 * body that sends nothing for that long is cancelled and the read rejects with
 * {@link BodyStalledError}.
 */
export async function readBoundedText(body: ReadableStream<Uint8Array> | null, limit: number, idleMs?: number): Promise<string | undefined> {
	if (body === null) return "";
	const bytes = await readBoundedBytes(body, limit, idleMs);
	return bytes === undefined ? undefined : new TextDecoder().decode(bytes);
}

/** {@link readBoundedText}'s bytes: the whole body, `undefined` past `limit`, stalls rejected. */
export async function readBoundedBytes(body: ReadableStream<Uint8Array>, limit: number, idleMs?: number): Promise<Uint8Array | undefined> {
	const reader = body.getReader();
	const chunks: Uint8Array[] = [];
	let size = 0;
	try {
		for (;;) {
			const { done, value } = await withinIdle(reader, idleMs);
			if (done) break;
			size += value.byteLength;
			if (size > limit) {
				await reader.cancel("body over the bound").catch(() => undefined);
				return undefined;
			}
			chunks.push(value);
		}
	} finally {
		reader.releaseLock();
	}
	// A small body usually arrives as one chunk: hand it on without a copy.
	if (chunks.length === 1) return chunks[0];
	const bytes = new Uint8Array(size);
	let offset = 0;
	for (const chunk of chunks) {
		bytes.set(chunk, offset);
		offset += chunk.byteLength;
	}
	return bytes;
}

async function withinIdle(reader: ReadableStreamDefaultReader<Uint8Array>, idleMs: number | undefined): Promise<ReadableStreamReadResult<Uint8Array>> {
	if (idleMs === undefined) return reader.read();
	const next = await within(reader.read(), idleMs);
	if (next !== TIMED_OUT) return next;
	await reader.cancel("stalled").catch(() => undefined);
	throw new BodyStalledError(idleMs);
}

/**
 * A body of stated `length` (a small one, that arrives at once) read whole in one native read:
 * a BYOB read of one byte more than stated, so a body longer than its `Content-Length` (a service
 * binding does not enforce it) is `undefined` after at most `length + 1` bytes. The whole body must
 * arrive within `withinMs` (one timer for the read, not one per chunk), or it is cancelled and the
 * read rejects with {@link BodyStalledError}. A stream that is not a byte stream is read as
 * {@link readBoundedBytes} reads it, with `withinMs` between chunks.
 */
export async function readStatedLength(body: ReadableStream<Uint8Array>, length: number, withinMs: number): Promise<Uint8Array | undefined> {
	let reader: ReadableStreamBYOBReader;
	try {
		reader = body.getReader({ mode: "byob" });
	} catch {
		return readBoundedBytes(body, length, withinMs);
	}
	let late = false;
	// Cancelling ends the pending read; `late` tells that from a body that ended.
	const deadline = setTimeout(() => {
		late = true;
		reader.cancel("stalled").catch(() => undefined);
	}, withinMs);
	let buffer = new ArrayBuffer(length + 1);
	let filled = 0;
	try {
		while (filled <= length) {
			let next: ReadableStreamReadResult<Uint8Array>;
			try {
				next = await reader.readAtLeast(length + 1 - filled, new Uint8Array(buffer, filled));
			} catch (error) {
				throw late ? new BodyStalledError(withinMs) : error;
			}
			if (late) throw new BodyStalledError(withinMs);
			// The view's buffer was transferred into the read and comes back in its result.
			if (next.value !== undefined) {
				buffer = next.value.buffer as ArrayBuffer;
				filled += next.value.byteLength;
			}
			if (next.done) break;
		}
		if (filled > length) {
			await reader.cancel("body over its stated length").catch(() => undefined);
			return undefined;
		}
	} finally {
		clearTimeout(deadline);
		reader.releaseLock();
	}
	return new Uint8Array(buffer, 0, filled);
}
