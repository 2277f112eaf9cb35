/**
 * Hands `body` on through a native stream and calls `done` once it has all been taken by the
 * client, or the client went away, or the body failed. A `length` keeps a known `Content-Length`.
 * Native, so the bytes never pass through JavaScript: a download keeps its full speed.
 */
export function onBodyEnd(body: ReadableStream<Uint8Array> | null, length: number | undefined, done: () => void): ReadableStream<Uint8Array> | null {
	if (body === null) {
		done();
		return null;
	}
	const sink = length === undefined ? new IdentityTransformStream() : new FixedLengthStream(length);
	body.pipeTo(sink.writable).then(done, done);
	return sink.readable;
}
