import type { BodyInspector } from "../lib/counting-pump";
import { type JsonProblem, scanTopLevelFields } from "../lib/json/top-level-fields";

/** The longest a non-streaming request may be expected to take, in seconds (the official SDKs' bound). */
export const NON_STREAMING_LIMIT_SECONDS = 600;
/** The output rate the official SDKs assume when they estimate a request's time. */
const TOKENS_PER_HOUR = 128_000;

/** The seconds the official SDKs expect a request with this `max_tokens` to take. */
export function expectedSeconds(maxTokens: number): number {
	return (3600 * maxTokens) / TOKENS_PER_HOUR;
}

/**
 * The edge's copy of the SDKs' 10-minute rule: a non-streaming Messages request whose `max_tokens`
 * predicts more than {@link NON_STREAMING_LIMIT_SECONDS} is refused, because a client that does
 * not use those SDKs would otherwise wait on a response that idle-connection timeouts kill.
 *
 * It reads the body as it streams past, in flat memory: `stream` and `max_tokens` may come after a
 * 30 MB `messages` array, and no depth of nesting blinds it. The verdict is given on the slice
 * that closes the top-level object, before that slice is forwarded, so the origin never receives
 * a refused request whole. A body it cannot read (not JSON, not an object, cut short, or followed
 * by more than whitespace) is refused on the slice where that shows, with where it went wrong: a
 * body the guard cannot judge must not pass unjudged, and the origin would refuse it as well.
 */
export function longRequestRule(onVerdict?: (verdict: LongRequestVerdict) => void): BodyInspector {
	const scan = scanTopLevelFields(["stream", "max_tokens"]);
	let decided = false;
	return {
		push(chunk) {
			if (decided) return undefined;
			scan.push(chunk);
			if (scan.state === "scanning") return undefined;
			// A complete object that passes is judged at the end, so trailing bytes can still refuse it.
			if (scan.state === "complete" && verdictOf().outcome !== "refused") return undefined;
			return judge();
		},
		end() {
			if (decided) return undefined;
			scan.end();
			return judge();
		},
	};

	function judge(): string | undefined {
		decided = true;
		const verdict = verdictOf();
		onVerdict?.(verdict);
		if (verdict.outcome === "unreadable") return unreadable(scan.problem);
		if (verdict.outcome !== "refused") return undefined;
		const minutes = Math.ceil(verdict.expectedSeconds / 60);
		return (
			`max_tokens of ${verdict.maxTokens} makes this non-streaming request expected to take up to ${minutes} minutes, ` +
			`over the ${NON_STREAMING_LIMIT_SECONDS / 60}-minute limit for requests that do not stream. ` +
			`Set "stream": true, or send it through the Message Batches API (POST /v1/messages/batches).`
		);
	}

	function verdictOf(): LongRequestVerdict {
		if (scan.state !== "complete") return { outcome: "unreadable" };
		const stream = scan.fields.get("stream");
		if (stream?.kind === "boolean" && stream.value) return { outcome: "streaming" };
		const maxTokens = scan.fields.get("max_tokens");
		if (maxTokens?.kind !== "number") return { outcome: "no-max-tokens" };
		const seconds = expectedSeconds(maxTokens.value);
		if (seconds <= NON_STREAMING_LIMIT_SECONDS) return { outcome: "within", maxTokens: maxTokens.value, expectedSeconds: seconds };
		return { outcome: "refused", maxTokens: maxTokens.value, expectedSeconds: seconds };
	}
}

/** The refusal of a body the rule cannot read, saying where it stopped being a JSON object. */
function unreadable(problem: JsonProblem | undefined): string {
	const prefix = "The request body is not a readable JSON object:";
	switch (problem?.kind) {
		case "not-an-object":
			return `${prefix} it must be a single JSON object, starting with "{", and the byte at offset ${problem.at} is not.`;
		case "syntax":
			return `${prefix} its JSON is malformed at byte offset ${problem.at}.`;
		case "trailing":
			return `${prefix} more than whitespace follows the object, from byte offset ${problem.at}.`;
		case "truncated":
			return `${prefix} it ended after ${problem.at} bytes, before its object closed.`;
		default:
			return `${prefix} it could not be read.`;
	}
}

/** What the rule found, for the request's log line. */
export type LongRequestVerdict =
	| { outcome: "streaming" | "no-max-tokens" | "unreadable" }
	| { outcome: "within" | "refused"; maxTokens: number; expectedSeconds: number };
