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
 * body is longer than the limit, so a caller never acts on a truncated document. With a
 * {@link ReadBound}, a body that sends nothing for that long (or is not whole in time) is cancelled
 * and the read rejects with {@link BodyStalledError}.
 */
export async function readBoundedText(body: ReadableStream<Uint8Array> | null, limit: number, bound?: ReadBound): Promise<string | undefined> {
	if (body === null) return "";
	const bytes = await readBoundedBytes(body, limit, bound);
	return bytes === undefined ? undefined : new TextDecoder().decode(bytes);
}

/**
 * How long a bounded read may take: `idleMs` between chunks (a number), or the whole body within
 * `wholeWithinMs`. The latter costs one timer for the whole read rather than one per chunk; it is
 * for bodies small enough to arrive at once.
 */
export type ReadBound = number | { readonly wholeWithinMs: number };

/** {@link readBoundedText}'s bytes: the whole body, `undefined` past `limit`, stalls rejected. */
export async function readBoundedBytes(body: ReadableStream<Uint8Array>, limit: number, bound?: ReadBound): Promise<Uint8Array | undefined> {
	const reader = body.getReader();
	const chunks: Uint8Array[] = [];
	let size = 0;
	const idleMs = typeof bound === "number" ? bound : undefined;
	const wholeWithinMs = typeof bound === "object" ? bound.wholeWithinMs : undefined;
	let late = false;
	// Cancelling the stream ends a pending read as done; `late` tells that from a body that ended.
	const deadline =
		wholeWithinMs === undefined
			? undefined
			: setTimeout(() => {
					late = true;
					reader.cancel("stalled").catch(() => undefined);
				}, wholeWithinMs);
	try {
		for (;;) {
			let next: ReadableStreamReadResult<Uint8Array>;
			try {
				next = await withinIdle(reader, idleMs);
			} catch (error) {
				throw late ? new BodyStalledError(wholeWithinMs ?? 0) : error;
			}
			if (late) throw new BodyStalledError(wholeWithinMs ?? 0);
			const { done, value } = next;
			if (done) break;
			size += value.byteLength;
			if (size > limit) {
				await reader.cancel("body over the bound").catch(() => undefined);
				return undefined;
			}
			chunks.push(value);
		}
	} finally {
		if (deadline !== undefined) clearTimeout(deadline);
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
