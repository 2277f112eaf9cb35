// CPU profiles of workerd isolates over the Chrome DevTools Protocol (workerd's inspector, opened
// by Miniflare's `inspectorPort`), and their summary: self and inclusive time by function, mapped
// back to the source files through the bundle's inline source map. Needs a global WebSocket (Node
// 22, or Node 20 with --experimental-websocket).
import { readFileSync } from "node:fs";
import { SourceMap } from "node:module";
import { basename } from "node:path";

/**
 * One DevTools session on an inspector target, with request/response over a WebSocket.
 * @param {string} url the target's webSocketDebuggerUrl
 */
export async function connect(url) {
	if (typeof WebSocket === "undefined") throw new Error("no global WebSocket: run Node with --experimental-websocket (Node 20) or Node 22+");
	const socket = new WebSocket(url);
	await new Promise((resolve, reject) => {
		socket.addEventListener("open", resolve, { once: true });
		socket.addEventListener("error", () => reject(new Error(`could not connect to ${url}`)), { once: true });
	});
	let next = 0;
	/** @type {Map<number, { resolve: (value: any) => void, reject: (error: Error) => void }>} */
	const pending = new Map();
	socket.addEventListener("message", (event) => {
		const message = JSON.parse(String(event.data));
		const waiter = message.id === undefined ? undefined : pending.get(message.id);
		if (!waiter) return;
		pending.delete(message.id);
		if (message.error) waiter.reject(new Error(`${message.error.message} (${message.error.code})`));
		else waiter.resolve(message.result);
	});
	return {
		/** @param {string} method @param {Record<string, unknown>} [params] @returns {Promise<any>} */
		send(method, params = {}) {
			const id = ++next;
			socket.send(JSON.stringify({ id, method, params }));
			return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
		},
		close: () => socket.close(),
	};
}

/**
 * The inspector's targets (one per workerd worker), by id.
 * @param {number} port
 * @returns {Promise<Array<{ id: string, webSocketDebuggerUrl: string }>>}
 */
export async function targets(port) {
	const response = await fetch(`http://127.0.0.1:${port}/json/list`);
	return response.json();
}

/**
 * Profiles the named targets while `during()` runs; returns each target's V8 profile.
 * @param {number} port
 * @param {string[]} ids target ids, e.g. "core:user:edge-guard"
 * @param {number} intervalUs sampling interval
 * @param {() => Promise<void>} during
 */
export async function profileTargets(port, ids, intervalUs, during) {
	const all = await targets(port);
	const sessions = [];
	for (const id of ids) {
		const target = all.find((candidate) => candidate.id === id);
		if (!target) throw new Error(`no inspector target ${id}; there are ${all.map((t) => t.id).join(", ")}`);
		const session = await connect(target.webSocketDebuggerUrl);
		await session.send("Profiler.enable");
		await session.send("Profiler.setSamplingInterval", { interval: intervalUs });
		sessions.push({ id, session });
	}
	try {
		for (const { session } of sessions) await session.send("Profiler.start");
		await during();
		/** @type {Record<string, Profile>} */
		const profiles = {};
		for (const { id, session } of sessions) profiles[id] = (await session.send("Profiler.stop")).profile;
		return profiles;
	} finally {
		for (const { session } of sessions) session.close();
	}
}

/**
 * @typedef {{ functionName: string, url: string, lineNumber: number, columnNumber: number }} CallFrame
 * @typedef {{ id: number, callFrame: CallFrame, children?: number[] }} ProfileNode
 * @typedef {{ nodes: ProfileNode[], samples: number[], timeDeltas: number[], startTime: number, endTime: number }} Profile
 */

/**
 * Maps bundle positions to source positions with the bundle's inline source map.
 * @param {string} bundlePath
 */
export function sourceMapper(bundlePath) {
	const text = readFileSync(bundlePath, "utf8");
	const match = /\/\/# sourceMappingURL=data:application\/json;base64,([A-Za-z0-9+/=]+)\s*$/.exec(text);
	const map = match?.[1] ? new SourceMap(JSON.parse(Buffer.from(match[1], "base64").toString("utf8"))) : undefined;
	const name = basename(bundlePath);
	/** @param {CallFrame} frame */
	return (frame) => {
		if (!map || !frame.url.endsWith(name) || frame.lineNumber < 0) return undefined;
		const entry = /** @type {{ originalSource?: string, originalLine?: number }} */ (map.findEntry(frame.lineNumber, frame.columnNumber));
		if (!entry?.originalSource) return undefined;
		const source = entry.originalSource.replace(/^.*?(src\/|node_modules\/|scripts\/)/, "$1");
		return `${source}:${(entry.originalLine ?? 0) + 1}`;
	};
}

/**
 * Self and inclusive time by function (name and source place), and self time by file, in ms.
 * Special nodes keep their names: "(program)" is native work inside the isolate with no JS frame
 * on the stack, "(garbage collector)" is GC, "(idle)" is the isolate waiting.
 * @param {Profile} profile
 * @param {(frame: CallFrame) => string | undefined} [mapFrame]
 */
export function summarise(profile, mapFrame = () => undefined) {
	/** @type {Map<number, ProfileNode>} */
	const byId = new Map(profile.nodes.map((node) => [node.id, node]));
	/** @type {Map<number, number>} */
	const parent = new Map();
	for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
	/** @type {Map<number, { fn: string, file: string }>} */
	const labels = new Map();
	for (const node of profile.nodes) {
		const frame = node.callFrame;
		const place = mapFrame(frame) ?? (frame.url ? `${basename(frame.url)}:${frame.lineNumber + 1}` : "");
		const fn = frame.functionName || (frame.url ? "(anonymous)" : "(native)");
		labels.set(node.id, { fn: place ? `${fn} ${place}` : fn, file: place ? place.replace(/:\d+$/, "") : fn });
	}
	// A runtime API (no script: `Response`, `clearTimeout`, a stream constructor) is named with its
	// JavaScript caller, and its time counted in the caller's file: that is where it can be avoided.
	for (const node of profile.nodes) {
		const label = labels.get(node.id);
		if (!label || node.callFrame.url || node.callFrame.functionName.startsWith("(")) continue;
		let caller = parent.get(node.id);
		while (caller !== undefined && !byId.get(caller)?.callFrame.url) caller = parent.get(caller);
		const callerLabel = caller === undefined ? undefined : labels.get(caller);
		if (callerLabel) labels.set(node.id, { fn: `[${label.fn}] ← ${callerLabel.fn}`, file: callerLabel.file });
	}
	/** @type {Map<string, number>} */
	const self = new Map();
	/** @type {Map<string, number>} */
	const inclusive = new Map();
	/** @type {Map<string, number>} */
	const files = new Map();
	let total = 0;
	let idle = 0;
	for (let i = 0; i < profile.samples.length; i++) {
		const id = profile.samples[i] ?? 0;
		const us = profile.timeDeltas[i + 1] ?? 0;
		const label = labels.get(id);
		if (!label) continue;
		if (label.fn === "(idle)") {
			idle += us;
			continue;
		}
		total += us;
		self.set(label.fn, (self.get(label.fn) ?? 0) + us);
		files.set(label.file, (files.get(label.file) ?? 0) + us);
		const seen = new Set();
		for (let at = /** @type {number | undefined} */ (id); at !== undefined; at = parent.get(at)) {
			const name = labels.get(at)?.fn;
			if (name === undefined || seen.has(name) || byId.get(at)?.callFrame.functionName === "(root)") continue;
			seen.add(name);
			inclusive.set(name, (inclusive.get(name) ?? 0) + us);
		}
	}
	const ms = (/** @type {Map<string, number>} */ map) =>
		[...map].map(([name, us]) => ({ name, ms: us / 1000, share: total > 0 ? us / total : 0 })).sort((a, b) => b.ms - a.ms);
	return { busyMs: total / 1000, idleMs: idle / 1000, self: ms(self), inclusive: ms(inclusive), files: ms(files) };
}
