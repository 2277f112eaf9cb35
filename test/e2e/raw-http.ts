import { connect } from "node:net";

/** An HTTP/1.1 response as read off a raw socket. */
export interface RawResponse {
	readonly status: number;
	/** Header names in lower case; a repeated header's values joined with ", ". */
	readonly headers: Readonly<Record<string, string>>;
	/** The body as received (chunked framing removed). */
	readonly body: Buffer;
	/** Whether the body ended by its own framing; false when the connection closed first (cut off). */
	readonly complete: boolean;
	/** The body as UTF-8 text. */
	text(): string;
}

/** The status line and headers, available before the body has ended. */
export type RawHead = Pick<RawResponse, "status" | "headers">;

/** One client connection written by hand, with its response parsed as it arrives. */
export interface RawExchange {
	/** Writes bytes; ignored once the connection is closed (a guard that answered early may close it). */
	write(data: string | Uint8Array): void;
	/** Resolves once the response's status line and headers are in. */
	readonly head: Promise<RawHead>;
	/** Resolves when the response body ends, or with `complete: false` when the connection closes first. */
	readonly response: Promise<RawResponse>;
	/** Resolves when the connection is closed, by either side. */
	readonly closed: Promise<void>;
	/** Whether the connection is closed. */
	isClosed(): boolean;
	/** Closes the connection at once (a client that leaves). */
	destroy(): void;
}

/** A chunk of a chunked request body. */
export function chunk(data: string | Uint8Array): Buffer {
	const bytes = typeof data === "string" ? Buffer.from(data) : Buffer.from(data);
	return Buffer.concat([Buffer.from(`${bytes.byteLength.toString(16)}\r\n`), bytes, Buffer.from("\r\n")]);
}

/** The chunk that ends a chunked body (no trailers). */
export const LAST_CHUNK = "0\r\n\r\n";

/**
 * A request line and header block, written exactly as given: names keep their spelling and case,
 * and nothing is added but `host` (when no header of that name is listed).
 */
export function requestHead(method: string, path: string, headers: readonly (readonly [string, string])[], host = "guard.test"): string {
	const lines = [`${method} ${path} HTTP/1.1`];
	if (!headers.some(([name]) => name.toLowerCase() === "host")) lines.push(`host: ${host}`);
	for (const [name, value] of headers) lines.push(`${name}: ${value}`);
	return `${lines.join("\r\n")}\r\n\r\n`;
}

/** Opens a connection to `baseUrl`'s host and port and parses whatever answer comes back. */
export function openRaw(baseUrl: string): RawExchange {
	const { hostname, port } = new URL(baseUrl);
	const socket = connect(Number(port), hostname);
	socket.setNoDelay(true);
	let closed = false;
	const parser = responseParser();
	let resolveHead: (head: RawHead) => void = () => undefined;
	let resolveResponse: (response: RawResponse) => void = () => undefined;
	let rejectBoth: (error: Error) => void = () => undefined;
	const head = new Promise<RawHead>((resolve, reject) => {
		resolveHead = resolve;
		rejectBoth = reject;
	});
	const response = new Promise<RawResponse>((resolve, reject) => {
		resolveResponse = resolve;
		const previous = rejectBoth;
		rejectBoth = (error) => {
			previous(error);
			reject(error);
		};
	});
	// Callers that only await one of them must not see the other's rejection as unhandled.
	head.catch(() => undefined);
	response.catch(() => undefined);
	let headSeen = false;
	let done = false;
	const finish = (whole: boolean) => {
		if (done) return;
		const parsed = parser.result();
		if (parsed === undefined) {
			done = true;
			rejectBoth(new Error(`the connection closed before a response arrived (${parser.received()} bytes received)`));
			return;
		}
		if (!whole && !closed) return;
		done = true;
		resolveResponse({ ...parsed, complete: whole, text: () => parsed.body.toString("utf8") });
	};
	socket.on("data", (data: Buffer) => {
		parser.push(data);
		const parsed = parser.result();
		if (parsed !== undefined && !headSeen) {
			headSeen = true;
			resolveHead({ status: parsed.status, headers: parsed.headers });
		}
		if (parser.ended()) finish(true);
	});
	const closedPromise = new Promise<void>((resolve) => {
		socket.once("close", () => {
			closed = true;
			finish(parser.ended() || parser.endsAtClose());
			resolve();
		});
	});
	// A reset after an early answer is the guard's right; what was received still counts.
	socket.on("error", () => undefined);
	return {
		write(data) {
			if (closed || socket.destroyed || socket.writableEnded) return;
			socket.write(data);
		},
		head,
		response,
		closed: closedPromise,
		isClosed: () => closed,
		destroy() {
			socket.destroy();
		},
	};
}

/** Sends `head` and `body` on a fresh connection, takes the whole response, then closes the connection. */
export async function sendRaw(baseUrl: string, head: string, body?: string | Uint8Array): Promise<RawResponse> {
	const exchange = openRaw(baseUrl);
	exchange.write(body === undefined ? head : Buffer.concat([Buffer.from(head), Buffer.from(body)]));
	try {
		return await exchange.response;
	} finally {
		exchange.destroy();
	}
}

interface ParsedSoFar {
	status: number;
	headers: Record<string, string>;
	body: Buffer;
}

/** An incremental HTTP/1.1 response parser: interim (1xx) responses skipped; length, chunked or close framing. */
function responseParser() {
	let buffer = Buffer.alloc(0);
	let total = 0;
	let parsed: ParsedSoFar | undefined;
	let framing: { kind: "length"; remaining: number } | { kind: "chunked" } | { kind: "close" } | { kind: "none" } = { kind: "none" };
	const bodyParts: Buffer[] = [];
	let ended = false;

	function parseHead(): boolean {
		const end = buffer.indexOf("\r\n\r\n");
		if (end === -1) return false;
		const lines = buffer.subarray(0, end).toString("latin1").split("\r\n");
		buffer = buffer.subarray(end + 4);
		const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "")?.[1]);
		if (!Number.isInteger(status)) throw new Error(`not an HTTP/1.1 status line: ${JSON.stringify(lines[0])}`);
		if (status >= 100 && status < 200) return true;
		const headers: Record<string, string> = {};
		for (const line of lines.slice(1)) {
			const colon = line.indexOf(":");
			if (colon < 1) continue;
			const name = line.slice(0, colon).trim().toLowerCase();
			const value = line.slice(colon + 1).trim();
			headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
		}
		parsed = { status, headers, body: Buffer.alloc(0) };
		if (status === 204 || status === 304) framing = { kind: "none" };
		else if (/chunked/i.test(headers["transfer-encoding"] ?? "")) framing = { kind: "chunked" };
		else if (headers["content-length"] !== undefined) framing = { kind: "length", remaining: Number(headers["content-length"]) };
		else framing = { kind: "close" };
		if (framing.kind === "none" || (framing.kind === "length" && framing.remaining === 0)) ended = true;
		return true;
	}

	function parseBody(): void {
		if (framing.kind === "length") {
			const take = buffer.subarray(0, framing.remaining);
			bodyParts.push(take);
			framing.remaining -= take.byteLength;
			buffer = buffer.subarray(take.byteLength);
			if (framing.remaining === 0) ended = true;
		} else if (framing.kind === "close") {
			bodyParts.push(buffer);
			buffer = Buffer.alloc(0);
		} else if (framing.kind === "chunked") {
			for (;;) {
				const lineEnd = buffer.indexOf("\r\n");
				if (lineEnd === -1) return;
				const size = Number.parseInt(buffer.subarray(0, lineEnd).toString("latin1").split(";")[0] ?? "", 16);
				if (!Number.isFinite(size)) throw new Error("malformed chunk size in the response");
				if (size === 0) {
					// Trailers (if any) end with an empty line.
					const trailerEnd = buffer.indexOf("\r\n\r\n", lineEnd);
					const emptyTrailer = buffer.subarray(lineEnd, lineEnd + 4).toString("latin1") === "\r\n\r\n";
					if (emptyTrailer || trailerEnd !== -1) ended = true;
					return;
				}
				if (buffer.byteLength < lineEnd + 2 + size + 2) return;
				bodyParts.push(buffer.subarray(lineEnd + 2, lineEnd + 2 + size));
				buffer = buffer.subarray(lineEnd + 2 + size + 2);
			}
		}
	}

	return {
		push(data: Buffer): void {
			total += data.byteLength;
			buffer = Buffer.concat([buffer, data]);
			while (parsed === undefined && buffer.byteLength > 0) {
				if (!parseHead()) return;
			}
			if (parsed !== undefined && !ended) parseBody();
		},
		result(): ParsedSoFar | undefined {
			return parsed === undefined ? undefined : { ...parsed, body: Buffer.concat(bodyParts) };
		},
		ended: () => ended,
		/** A body framed by the connection's close ends when it closes. */
		endsAtClose: () => parsed !== undefined && framing.kind === "close",
		received: () => total,
	};
}
