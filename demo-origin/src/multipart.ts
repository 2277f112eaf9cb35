import { badRequest } from "./http";

/** What a part's headers say about it. */
export interface PartHeaders {
	/** The `name` of its Content-Disposition (the form field). */
	readonly name: string | null;
	/** The `filename` (or decoded `filename*`) of its Content-Disposition, as sent. */
	readonly filename: string | null;
	/** Its Content-Type header, as sent. */
	readonly contentType: string | null;
}

/** Receives a part's bytes, in order, as they stream in; the views are only valid during the call. */
export type PartSink = (bytes: Uint8Array) => void;

const encoder = new TextEncoder();
const HEADER_END = encoder.encode("\r\n\r\n");
const CRLF = encoder.encode("\r\n");
const DASH = 0x2d;
const MAX_HEADER_BYTES = 16 * 1024;
const MAX_PARTS = 1000;
/** After the closing boundary only an epilogue is left; read this much of it, then stop reading. */
const MAX_EPILOGUE_BYTES = 64 * 1024;

/** The boundary of a `multipart/form-data` Content-Type, or null when it is not one or has none. */
export function multipartBoundary(contentType: string | null): string | null {
	if (contentType === null || !/^\s*multipart\/form-data\s*(;|$)/i.test(contentType)) return null;
	const match = /;\s*boundary\s*=\s*(?:"([^"]{1,70})"|([^;\s]{1,70}))/i.exec(contentType);
	return match?.[1] ?? match?.[2] ?? null;
}

/**
 * Reads a multipart body as it streams, without holding it: for each part, `onPart` gets the
 * part's headers and returns the sink its bytes go to. Memory stays bounded by the larger of a
 * chunk and a header block, whatever the size of the parts. A malformed or truncated body is a 400.
 */
export async function readMultipart(body: ReadableStream<Uint8Array>, boundary: string, onPart: (headers: PartHeaders) => PartSink): Promise<void> {
	const delimiter = encoder.encode(`\r\n--${boundary}`);
	// The first boundary line has no CRLF before it: a virtual one lets one delimiter match them all.
	const scanner = new Scanner(body.getReader(), CRLF);
	const truncated = () => badRequest("multipart body ended before its closing boundary");
	if (!(await scanner.pipeUntil(delimiter, () => undefined))) {
		throw badRequest("multipart body contains no part delimited by the Content-Type's boundary");
	}
	for (let parts = 0; ; parts++) {
		const next = await scanner.peek(2);
		if (next === null) throw truncated();
		if (next[0] === DASH && next[1] === DASH) {
			await scanner.drain(MAX_EPILOGUE_BYTES);
			return;
		}
		if (parts >= MAX_PARTS) throw badRequest(`multipart body has more than ${MAX_PARTS} parts`);
		const headerChunks: Uint8Array[] = [];
		let headerBytes = 0;
		const headersFound = await scanner.pipeUntil(HEADER_END, (bytes) => {
			headerBytes += bytes.byteLength;
			if (headerBytes > MAX_HEADER_BYTES) throw badRequest(`multipart part headers exceed ${MAX_HEADER_BYTES} bytes`);
			headerChunks.push(bytes.slice());
		});
		if (!headersFound) throw truncated();
		const sink = onPart(parsePartHeaders(new TextDecoder().decode(concat(headerChunks))));
		if (!(await scanner.pipeUntil(delimiter, sink))) throw truncated();
	}
}

function parsePartHeaders(block: string): PartHeaders {
	const lines = block.split("\r\n");
	// The block starts with the rest of the boundary line, which may hold only transport padding.
	if (!/^[ \t]*$/.test(lines.shift() ?? "")) throw badRequest("multipart boundary line has trailing characters");
	let disposition: string | null = null;
	let contentType: string | null = null;
	for (const line of lines) {
		const colon = line.indexOf(":");
		if (colon <= 0) throw badRequest(`multipart part has a malformed header line: ${JSON.stringify(line.slice(0, 100))}`);
		const name = line.slice(0, colon).trim().toLowerCase();
		const value = line.slice(colon + 1).trim();
		if (name === "content-disposition") disposition = value;
		else if (name === "content-type") contentType = value;
	}
	if (disposition === null) throw badRequest("multipart part has no Content-Disposition header");
	return { ...parseDisposition(disposition), contentType };
}

function parseDisposition(value: string): { name: string | null; filename: string | null } {
	const params = new Map<string, string>();
	for (const match of value.matchAll(/;\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))/g)) {
		const key = (match[1] ?? "").toLowerCase();
		const quoted = match[2];
		params.set(key, quoted !== undefined ? quoted.replace(/\\(.)/g, "$1") : (match[3] ?? "").trim());
	}
	let filename = params.get("filename") ?? null;
	const extended = /^[^']*'[^']*'(.*)$/.exec(params.get("filename*") ?? "");
	if (extended) {
		try {
			filename = decodeURIComponent(extended[1] ?? "");
		} catch {
			// A badly encoded filename* falls back to the plain filename.
		}
	}
	return { name: params.get("name") ?? null, filename };
}

/** A forward-only view over a byte stream that can pass bytes on up to a delimiter. */
class Scanner {
	private buffer: Uint8Array;
	private ended = false;

	constructor(
		private readonly reader: ReadableStreamDefaultReader<Uint8Array>,
		initial: Uint8Array,
	) {
		this.buffer = initial;
	}

	/**
	 * Passes every byte before the next `delimiter` to `sink` and consumes the delimiter. Bytes
	 * leave as soon as they cannot be the start of a delimiter, so at most `delimiter.length - 1`
	 * bytes are held back between chunks. Returns false if the stream ended first.
	 */
	async pipeUntil(delimiter: Uint8Array, sink: PartSink): Promise<boolean> {
		for (;;) {
			const at = indexOf(this.buffer, delimiter);
			if (at >= 0) {
				if (at > 0) sink(this.buffer.subarray(0, at));
				this.buffer = this.buffer.subarray(at + delimiter.byteLength);
				return true;
			}
			const safe = this.buffer.byteLength - (delimiter.byteLength - 1);
			if (safe > 0) {
				sink(this.buffer.subarray(0, safe));
				this.buffer = this.buffer.subarray(safe);
			}
			if (!(await this.fill())) return false;
		}
	}

	/** The next `count` bytes without consuming them, or null if the stream ends first. */
	async peek(count: number): Promise<Uint8Array | null> {
		while (this.buffer.byteLength < count) {
			if (!(await this.fill())) return null;
		}
		return this.buffer.subarray(0, count);
	}

	/** Reads to the end of the stream, or cancels it once more than `limit` bytes came. */
	async drain(limit: number): Promise<void> {
		let seen = this.buffer.byteLength;
		this.buffer = new Uint8Array(0);
		while (!this.ended) {
			const { done, value } = await this.reader.read();
			if (done) this.ended = true;
			else seen += value.byteLength;
			if (seen > limit) {
				await this.reader.cancel();
				this.ended = true;
			}
		}
	}

	private async fill(): Promise<boolean> {
		while (!this.ended) {
			const { done, value } = await this.reader.read();
			if (done) {
				this.ended = true;
				return false;
			}
			if (value.byteLength === 0) continue;
			this.buffer = this.buffer.byteLength === 0 ? value : concat([this.buffer, value]);
			return true;
		}
		return false;
	}
}

/** The first index of `needle` in `haystack`, or -1. */
function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
	const first = needle[0] ?? 0;
	const lastStart = haystack.byteLength - needle.byteLength;
	for (let i = haystack.indexOf(first); i !== -1 && i <= lastStart; i = haystack.indexOf(first, i + 1)) {
		let j = 1;
		while (j < needle.byteLength && haystack[i + j] === needle[j]) j++;
		if (j === needle.byteLength) return i;
	}
	return -1;
}

/** The chunks joined into one array. */
export function concat(chunks: readonly Uint8Array[]): Uint8Array {
	let total = 0;
	for (const chunk of chunks) total += chunk.byteLength;
	const out = new Uint8Array(total);
	let offset = 0;
	for (const chunk of chunks) {
		out.set(chunk, offset);
		offset += chunk.byteLength;
	}
	return out;
}
