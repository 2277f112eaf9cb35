import { parseJsonObject } from "../lib/parse-json";

const CR = 0x0d;
const LF = 0x0a;

/**
 * Finds where server-sent events end in a byte stream fed in chunks split anywhere, as the WHATWG
 * "event stream interpretation" reads it: a line ends at CRLF, LF or CR, and an event (a frame)
 * ends at an empty line. CR and LF never occur inside a UTF-8 sequence, so bytes are scanned as
 * they are, without decoding; each byte is looked at once, however the stream is split.
 */
export class FrameScanner {
	/** The current line has at least one byte. */
	#inLine = false;
	/** The last byte seen was a CR: an LF first in the next chunk completes that line end. */
	#afterCR = false;
	/** ...and that CR ended a frame, so such an LF belongs to the frame too. */
	#crEndedFrame = false;

	/**
	 * Feeds the next chunk; answers the offset just past the last frame end in it (so
	 * `chunk.subarray(0, end)` finishes whole frames), or -1 when no frame ends in it.
	 */
	scan(chunk: Uint8Array): number {
		const length = chunk.length;
		if (length === 0) return -1;
		let end = -1;
		let i = 0;
		if (this.#afterCR && chunk[0] === LF) {
			i = 1;
			if (this.#crEndedFrame) end = 1;
		}
		this.#afterCR = false;
		let inLine = this.#inLine;
		// indexOf runs natively; each is redone only once the scan has passed the byte it found.
		let cr = -1;
		let lf = -1;
		while (i < length) {
			if (cr < i) cr = indexOr(chunk, CR, i, length);
			if (lf < i) lf = indexOr(chunk, LF, i, length);
			const at = Math.min(cr, lf);
			if (at === length) {
				inLine = true;
				break;
			}
			const endsFrame = !inLine && at === i;
			inLine = false;
			i = at + 1;
			if (endsFrame) end = i;
			if (chunk[at] !== CR) continue;
			if (i === length) {
				this.#afterCR = true;
				this.#crEndedFrame = endsFrame;
			} else if (chunk[i] === LF) {
				i++;
				if (endsFrame) end = i;
			}
		}
		this.#inLine = inLine;
		return end;
	}
}

function indexOr(chunk: Uint8Array, byte: number, from: number, none: number): number {
	const at = chunk.indexOf(byte, from);
	return at === -1 ? none : at;
}

/**
 * The first `error` event in `frames` (text made of whole frames), read the way a client reads
 * it: with the `error.type` of its JSON data when there is one. `undefined` when there is none.
 */
export function findErrorEvent(frames: string): { type: string | undefined } | undefined {
	let event = "";
	let data: string[] = [];
	for (const line of frames.split(/\r\n|\r|\n/)) {
		if (line === "") {
			// As in the spec, a frame without data is not dispatched: a client never sees it.
			if (event === "error" && data.length > 0) return { type: errorType(data.join("\n")) };
			event = "";
			data = [];
			continue;
		}
		const colon = line.indexOf(":");
		const field = colon === -1 ? line : line.slice(0, colon);
		const value = colon === -1 ? "" : line.slice(line[colon + 1] === " " ? colon + 2 : colon + 1);
		if (field === "event") event = value;
		else if (field === "data") data.push(value);
	}
	return undefined;
}

function errorType(data: string): string | undefined {
	const error = parseJsonObject(data)?.error;
	if (typeof error !== "object" || error === null) return undefined;
	const type = (error as { type?: unknown }).type;
	return typeof type === "string" ? type : undefined;
}
