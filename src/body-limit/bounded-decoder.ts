import type { ContentEncoding } from "../config/route-table";

/**
 * Deflate cannot expand one input byte into more than 1032 output bytes, so a slice of this many
 * compressed bytes decodes to at most 258,000 bytes: less than one {@link OUT_VIEW}.
 */
const IN_SLICE = 250;
/** What one read of the decoder takes: the whole output of one {@link IN_SLICE}, whatever it is. */
const OUT_VIEW = 256 * 1024;

/** A decoded body whose decoder only works while its reader asks for more. */
export interface BoundedDecoder {
	/** The decoded bytes; each read decodes at most one slice of compressed input. */
	readonly readable: ReadableStream<Uint8Array>;
	/** Stops decoding and cancels the compressed source (a refused body is not read further). */
	cancel(reason: string): Promise<void>;
}

/**
 * Decodes `source` with the runtime's `DecompressionStream`, feeding it compressed bytes only when
 * the reader has taken everything it decoded so far.
 *
 * Why not `pipeThrough`: workerd's decoder accepts every write at once and keeps all it decoded
 * until read (measured: all 64 KB of a 64 MiB gzip bomb were accepted with nothing read), so a pipe feeds it the whole
 * compressed body while the counting pump reads a few slices. Here a slice of at most
 * {@link IN_SLICE} bytes is written only while a read of {@link OUT_VIEW} bytes is waiting on the
 * decoder, and that read takes all the slice decodes to, so the decoder never holds more than one
 * slice's output, and an unread body costs nothing.
 */
export function boundedDecoder(source: ReadableStream<Uint8Array>, format: ContentEncoding): BoundedDecoder {
	const decoder = new DecompressionStream(format);
	const input = decoder.writable.getWriter();
	const output = decoder.readable.getReader({ mode: "byob" });
	const compressed = sliced(source);
	let sourceDone = false;
	let view = new ArrayBuffer(OUT_VIEW);
	let cancelled = false;
	// The read waiting on the decoder, and whether it has settled (seen without awaiting it).
	let waiting: { read: Promise<ReadableStreamReadResult<Uint8Array>>; settled: boolean } | undefined;

	const take = () => {
		const read = output.read(new Uint8Array(view));
		const entry = { read, settled: false };
		read.then(
			() => {
				entry.settled = true;
			},
			() => {
				entry.settled = true;
			},
		);
		return entry;
	};
	/** Writes the next compressed slice, or ends the decoder's input at the source's end. */
	const feed = async () => {
		const { done, value } = await compressed.read();
		if (done) {
			sourceDone = true;
			await input.close();
			return;
		}
		await input.write(value);
	};

	/** The next decoded bytes (a view of the reused buffer), or `undefined` at the end. */
	const decodeMore = async (): Promise<Uint8Array | undefined> => {
		waiting ??= take();
		const current = waiting;
		// Fed only while a read waits: that read is fulfilled by the write that decodes something.
		while (!current.settled && !sourceDone) {
			await feed();
			// The read fulfilled during the write settles a turn later.
			await Promise.race([current.read, Promise.resolve()]).catch(() => undefined);
		}
		const { done, value } = await current.read;
		waiting = undefined;
		if (done || value === undefined) return undefined;
		view = value.buffer as ArrayBuffer;
		return value;
	};
	let left: Uint8Array = new Uint8Array(0);
	// A byte stream: the reader's buffers are filled by copy, so decoding leaves no garbage behind.
	const decoded: UnderlyingByteSource = {
		type: "bytes",
		pull: async (controller) => {
			if (left.byteLength === 0) {
				const more = await decodeMore();
				if (more === undefined) {
					controller.close();
					controller.byobRequest?.respond(0);
					return;
				}
				left = more;
			}
			const target = controller.byobRequest?.view;
			if (target === null || target === undefined) {
				controller.enqueue(left.slice());
				left = new Uint8Array(0);
				return;
			}
			const into = new Uint8Array(target.buffer, target.byteOffset, target.byteLength);
			const size = Math.min(into.byteLength, left.byteLength);
			into.set(left.subarray(0, size));
			left = left.subarray(size);
			controller.byobRequest?.respond(size);
		},
		cancel: (reason) => stop(String(reason)),
	};
	const readable = new ReadableStream(decoded, { highWaterMark: 0 }) as ReadableStream<Uint8Array>;
	const stop = async (reason: string) => {
		if (cancelled) return;
		cancelled = true;
		await Promise.allSettled([compressed.cancel(reason), output.cancel(reason), input.abort(reason)]);
	};
	return { readable, cancel: stop };
}

/** Reads a stream in slices of at most {@link IN_SLICE} bytes, with BYOB reads where it can. */
function sliced(source: ReadableStream<Uint8Array>): { read(): Promise<ReadableStreamReadResult<Uint8Array>>; cancel(reason: string): Promise<void> } {
	let byob: ReadableStreamBYOBReader | undefined;
	try {
		byob = source.getReader({ mode: "byob" });
	} catch {
		byob = undefined;
	}
	if (byob !== undefined) {
		const reader = byob;
		return { read: () => reader.read(new Uint8Array(IN_SLICE)), cancel: (reason) => reader.cancel(reason) };
	}
	const reader = source.getReader();
	let rest: Uint8Array | undefined;
	return {
		read: async () => {
			if (rest === undefined || rest.byteLength === 0) {
				const next = await reader.read();
				if (next.done) return next;
				rest = next.value;
			}
			const value = rest.subarray(0, IN_SLICE);
			rest = rest.subarray(value.byteLength);
			return { done: false, value };
		},
		cancel: (reason) => reader.cancel(reason),
	};
}
