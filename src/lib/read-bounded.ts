/**
 * Reads at most `limit` bytes of a body as text and cancels the rest. Returns `undefined` when the
 * body is longer than the limit, so a caller never acts on a truncated document.
 */
export async function readBoundedText(body: ReadableStream<Uint8Array> | null, limit: number): Promise<string | undefined> {
	if (body === null) return "";
	const reader = body.getReader();
	const chunks: Uint8Array[] = [];
	let size = 0;
	try {
		for (;;) {
			const { done, value } = await reader.read();
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
	const bytes = new Uint8Array(size);
	let offset = 0;
	for (const chunk of chunks) {
		bytes.set(chunk, offset);
		offset += chunk.byteLength;
	}
	return new TextDecoder().decode(bytes);
}
