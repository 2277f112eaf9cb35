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
