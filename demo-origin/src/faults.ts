import { badRequest } from "./http";
import { sleep } from "./sleep";

/** The faults that act on a message stream (POST /v1/messages with `"stream": true` only). */
export type StreamFault = { readonly kind: "stream-abort" } | { readonly kind: "slow-stream"; readonly delayMs: number };

/** A fault a test asks for with the `x-demo-fault` header. */
export type Fault =
	| { readonly kind: "html-502" }
	| { readonly kind: "hang" }
	| { readonly kind: "overloaded" }
	| { readonly kind: "slow"; readonly delayMs: number }
	| StreamFault;

export const FAULT_HEADER = "x-demo-fault";
export const FAULT_DELAY_HEADER = "x-demo-fault-delay-ms";
/**
 * With several demo origins (`npm start -- --origins 2`): the one demo origin, by number from 1,
 * that applies the request's fault; the others answer normally, so a failover can be shown.
 */
export const FAULT_ORIGIN_HEADER = "x-demo-fault-origin";
const FAULT_NAMES = ["html-502", "stream-abort", "hang", "slow-stream", "slow", "overloaded"] as const;
const DEFAULT_SLOW_STREAM_DELAY_MS = 20_000;
const DEFAULT_SLOW_DELAY_MS = 1_000;
const MAX_DELAY_MS = 60_000;

/**
 * The fault the request asks for, or null; an unknown name or a bad delay is a 400. `origin` is
 * this demo origin's number: a fault meant for another (`x-demo-fault-origin`) is not applied.
 */
export function readFault(request: Request, origin = "1"): Fault | null {
	const name = request.headers.get(FAULT_HEADER);
	if (name === null) return null;
	const meantFor = request.headers.get(FAULT_ORIGIN_HEADER);
	if (meantFor !== null && meantFor.trim() !== origin) return null;
	switch (name.trim().toLowerCase()) {
		case "html-502":
			return { kind: "html-502" };
		case "hang":
			return { kind: "hang" };
		case "stream-abort":
			return { kind: "stream-abort" };
		case "slow-stream":
			return { kind: "slow-stream", delayMs: readDelayMs(request, DEFAULT_SLOW_STREAM_DELAY_MS) };
		case "slow":
			return { kind: "slow", delayMs: readDelayMs(request, DEFAULT_SLOW_DELAY_MS) };
		case "overloaded":
			return { kind: "overloaded" };
		default:
			throw badRequest(`${FAULT_HEADER}: unknown fault ${JSON.stringify(name)}; allowed values are ${FAULT_NAMES.join(", ")}`);
	}
}

function readDelayMs(request: Request, fallback: number): number {
	const text = request.headers.get(FAULT_DELAY_HEADER);
	if (text === null) return fallback;
	const trimmed = text.trim();
	const value = Number(trimmed);
	if (!/^\d+$/.test(trimmed) || value > MAX_DELAY_MS) {
		throw badRequest(`${FAULT_DELAY_HEADER}: must be an integer number of milliseconds from 0 to ${MAX_DELAY_MS}`);
	}
	return value;
}

/** A 502 as an nginx in front of a dead upstream writes it: HTML, not the API's JSON envelope. */
export function html502(): Response {
	const page =
		"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n" +
		"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
	return new Response(page, { status: 502, headers: { "content-type": "text/html", server: "nginx" } });
}

/**
 * Never answers while the client waits; returns once `signal` aborts. It waits on a repeating timer
 * rather than a bare never-settling promise because workerd cancels a request that has nothing
 * left pending ("the script will never generate a response").
 */
export async function hang(signal: AbortSignal): Promise<Response> {
	while (await sleep(MAX_DELAY_MS, signal)) {
		// Keep waiting.
	}
	// Nobody is left to read this; it only ends the handler.
	return new Response(null, { status: 499 });
}
