/**
 * Hands `body` on and calls `done` with the bytes sent once the client has taken it all, or went
 * away, or the body failed. A body of known `length` goes through a native stream (the bytes never
 * pass through JavaScript, so a download keeps its full speed) and keeps its `Content-Length`; a
 * body of unknown length is counted chunk by chunk, so the log line can still say its size.
 */
export function onBodyEnd(
	body: ReadableStream<Uint8Array> | null,
	length: number | undefined,
	done: (bytes: number | undefined) => void,
): ReadableStream<Uint8Array> | null {
	if (body === null) {
		done(0);
		return null;
	}
	if (length !== undefined) {
		// A little room, so a small body is handed on whole even before the client starts reading it.
		const sink = new FixedLengthStream(length, { highWaterMark: 64 * 1024 });
		body.pipeTo(sink.writable).then(
			() => done(length),
			() => done(undefined),
		);
		return sink.readable;
	}
	let bytes = 0;
	const counter = new TransformStream<Uint8Array, Uint8Array>(
		{
			transform(chunk, controller) {
				bytes += chunk.byteLength;
				controller.enqueue(chunk);
			},
		},
		undefined,
		{ highWaterMark: 64 * 1024, size: (chunk) => chunk?.byteLength ?? 0 },
	);
	body.pipeTo(counter.writable).then(
		() => done(bytes),
		() => done(bytes),
	);
	return counter.readable;
}
