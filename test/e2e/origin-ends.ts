import type { IncomingMessage, ServerResponse } from "node:http";

/** How a test origin saw one request end: its body, and the answer it sent. */
export interface EndsSeen {
	/** `complete`: the body ended by its framing; `aborted`: the connection closed or errored first. */
	bodyOutcome: "pending" | "complete" | "aborted";
	/** `answered`: the answer was sent whole; `cut`: the connection closed before that. */
	responseOutcome: "pending" | "answered" | "cut";
}

/**
 * Records on `entry` how the answer ended and, if the connection closed first, that the body was
 * cut: what every test origin asserts on. `changed` wakes whatever waits on the records.
 */
export function recordEnds(entry: EndsSeen, req: IncomingMessage, res: ServerResponse, changed: () => void): void {
	req.on("error", () => undefined);
	res.on("error", () => undefined);
	res.on("finish", () => {
		entry.responseOutcome = "answered";
		changed();
	});
	res.on("close", () => {
		if (entry.bodyOutcome === "pending") entry.bodyOutcome = "aborted";
		if (entry.responseOutcome === "pending") entry.responseOutcome = "cut";
		changed();
	});
}

/**
 * Records a request's whole exchange on `entry`: the body's bytes as they arrive, its end (then
 * `answer` runs: an origin answers once it has the body), and how the exchange ended
 * ({@link recordEnds}).
 */
export function recordExchange(entry: EndsSeen & { bodyBytes: number }, req: IncomingMessage, res: ServerResponse, changed: () => void, answer: () => void): void {
	req.on("data", (data: Buffer) => {
		entry.bodyBytes += data.byteLength;
		changed();
	});
	req.on("end", () => {
		entry.bodyOutcome = "complete";
		changed();
		answer();
	});
	recordEnds(entry, req, res, changed);
}
