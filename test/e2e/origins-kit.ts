// Helpers for origins.test.ts (issue 23): recording origins whose behaviour the test switches
// between requests (answer, 529, 503, silence, a stream cut after its first event, or refusing
// connections outright), so one guard in front of several of them can be made to fail over.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { type OriginRecord, originRecord } from "./recording-origin";
import { recordExchange } from "./origin-ends";
import { Watched } from "./watched";

/** What a switchable origin does with the next requests. */
export type OriginMode = "ok" | "529" | "503" | "silent" | "sse-cut" | "refuse";

/** The usage every message answer of these origins reports. */
export const REPORTED = { input_tokens: 3, output_tokens: 2 } as const;

/** What a switchable origin saw of one request. */
export interface SwitchRecord extends OriginRecord {
	/** The `x-guard-attempt` header the guard sent. */
	readonly attempt: string | undefined;
	readonly requestId: string | undefined;
	/** The mode it was answered in. */
	readonly mode: OriginMode;
}

export interface SwitchableOrigin {
	readonly url: string;
	readonly records: readonly SwitchRecord[];
	/** Switches behaviour for the requests that arrive from now on; `refuse` closes the port, any other mode opens it again. */
	setMode(mode: OriginMode): Promise<void>;
	clear(): void;
	waitFor(condition: () => boolean, what: string, timeoutMs?: number): Promise<void>;
	stop(): Promise<void>;
}

/** Starts a switchable origin on a free loopback port, in mode `ok`. */
export async function startSwitchableOrigin(): Promise<SwitchableOrigin> {
	const records: SwitchRecord[] = [];
	const watched = new Watched();
	const changed = () => watched.changed();
	const sockets = new Set<Socket>();
	let mode: OriginMode = "ok";
	const server = createServer((req, res) => {
		const entry: SwitchRecord = {
			...originRecord(req),
			attempt: header(req, "x-guard-attempt"),
			requestId: header(req, "request-id"),
			mode,
		};
		records.push(entry);
		changed();
		recordExchange(entry, req, res, changed, () => answer(entry.mode, req, res));
	});
	server.on("connection", (socket) => {
		sockets.add(socket);
		socket.once("close", () => sockets.delete(socket));
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const port = (server.address() as AddressInfo).port;
	const close = async () => {
		if (!server.listening) return;
		const closed = new Promise<void>((resolve) => server.close(() => resolve()));
		for (const socket of sockets) socket.destroy();
		await closed;
	};
	return {
		url: `http://127.0.0.1:${port}`,
		records,
		async setMode(next) {
			mode = next;
			if (next === "refuse") await close();
			else if (!server.listening) await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
		},
		clear() {
			records.length = 0;
		},
		waitFor(condition, what, timeoutMs = 5000) {
			return watched.waitFor(condition, timeoutMs, () => `the origin did not see ${what} within ${timeoutMs} ms`);
		},
		stop: close,
	};
}

function header(req: IncomingMessage, name: string): string | undefined {
	const value = req.headers[name];
	return Array.isArray(value) ? value[0] : value;
}

const MESSAGE = {
	id: "msg_origins",
	type: "message",
	role: "assistant",
	model: "claude-test-1",
	content: [{ type: "text", text: "ok" }],
	stop_reason: "end_turn",
	stop_sequence: null,
	usage: REPORTED,
};

function answer(mode: OriginMode, req: IncomingMessage, res: ServerResponse): void {
	const json = (status: number, body: unknown) => {
		const text = JSON.stringify(body);
		res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
		res.end(text);
	};
	if (mode === "silent" || mode === "refuse") return;
	if (mode === "529") {
		json(529, { type: "error", error: { type: "overloaded_error", message: "Overloaded" } });
		return;
	}
	if (mode === "503") {
		json(503, { type: "error", error: { type: "api_error", message: "The origin is unavailable." } });
		return;
	}
	if (mode === "sse-cut") {
		res.writeHead(200, { "content-type": "text/event-stream" });
		const start = { type: "message_start", message: { ...MESSAGE, content: [], stop_reason: null, usage: { input_tokens: REPORTED.input_tokens, output_tokens: 1 } } };
		res.write(`event: message_start\ndata: ${JSON.stringify(start)}\n\n`, () => {
			// Cut once the first event is on the wire: the client has had its first byte.
			setTimeout(() => res.socket?.destroy(), 50);
		});
		return;
	}
	const path = (req.url ?? "").split("?")[0];
	const list = { data: [], has_more: false, first_id: null, last_id: null };
	if (req.method === "POST" && path === "/v1/messages") json(200, MESSAGE);
	else if (req.method === "GET" && (path === "/v1/models" || path === "/v1/files")) json(200, list);
	else json(404, { type: "error", error: { type: "not_found_error", message: "Not found" } });
}
