import type { DecodedKey } from "./decoded-key";
import { DecimalNumber, type NumberReader } from "./number";
import { STRING_CAPTURE_LIMIT, StringCapture } from "./string-capture";
import { type JsonProblem, JsonObjectTokenizer, type MemberHandler, type ValueKind } from "./tokenizer";

export type { JsonProblem } from "./tokenizer";

/** Distinct models a {@link BatchScan} keeps apart; requests for any further model count as `unknown`. */
export const MAX_BATCH_MODELS = 64;

/** Requests of a batch and the sum of their `max_tokens`. */
export interface BatchTally {
	readonly requests: number;
	readonly maxTokens: number;
}

/** An incremental scan of a `POST /v1/messages/batches` body; see {@link scanBatchRequests}. */
export interface BatchScan {
	/** Feeds the next bytes of the body. Never throws on bad JSON: it marks the scan invalid. */
	push(chunk: Uint8Array): void;
	/** The body ended. */
	end(): void;
	/**
	 * `complete`: the top-level object closed and only whitespace may follow; the counts are final.
	 * `invalid`: not a JSON object, a syntax error, trailing bytes, or a body that ended before its
	 * object closed; further bytes are ignored. While `scanning`, the counts are those read so far.
	 */
	readonly state: "scanning" | "complete" | "invalid";
	/** Why and where the body is invalid; undefined unless `state` is `invalid`. */
	readonly problem: JsonProblem | undefined;
	/** Whether the body's (last) `requests` member is an array: without one the body is no batch. */
	readonly requestsArray: boolean;
	/** Elements of the (last) `requests` array. */
	readonly requests: number;
	/** Requests whose `params.model` is a string, by that model, for at most {@link MAX_BATCH_MODELS} models. */
	readonly byModel: ReadonlyMap<string, BatchTally>;
	/**
	 * Requests without a string `params.model` (an element that is not an object, no `params`
	 * object, no `model`, a non-string one, a model string of over {@link STRING_CAPTURE_LIMIT}
	 * bytes of JSON text), and requests for models past the first {@link MAX_BATCH_MODELS}.
	 */
	readonly unknown: BatchTally;
	/** Requests whose `params.max_tokens` is missing or not a non-negative safe integer: each counts 0 tokens. */
	readonly missingMaxTokens: number;
	/** Bytes the scan holds beyond fixed-size buffers (model names kept, nesting bits), for tests of its memory. */
	readonly heldBytes: number;
}

/**
 * Scans a Message Batches create body as it streams past, for what a claim needs: how many
 * requests name each model and the sum of their `max_tokens`. Memory does not grow with the body
 * (bodies reach 256 MB) but by one bit per level of nesting and by the model names kept (at most
 * {@link MAX_BATCH_MODELS}, each at most {@link STRING_CAPTURE_LIMIT} bytes of JSON text): only
 * `requests[*].params.model` and `requests[*].params.max_tokens` are read, everything else (the
 * messages, and any `model` key nested in them) is checked and forgotten. Chunks are not retained,
 * so a caller may reuse a buffer once `push` returns.
 *
 * It reads the body as `JSON.parse(new TextDecoder().decode(body))` does, with the
 * {@link JsonObjectTokenizer}'s leniencies (a leading byte-order mark, raw control characters in
 * strings): at every level the last of duplicate keys wins (a second `requests` array replaces the
 * first, a second `params`, `model` or `max_tokens` of one request replaces the earlier), and keys
 * are compared after their escapes are decoded. Sums past 2^53 tokens are rounded as doubles are.
 */
export function scanBatchRequests(): BatchScan {
	return new BatchRequestScan();
}

class BatchRequestScan implements BatchScan {
	readonly #requests = new BatchRequests();
	readonly #tokenizer = new JsonObjectTokenizer(this.#requests, LONGEST_KEY);

	push(chunk: Uint8Array): void {
		this.#tokenizer.push(chunk);
	}

	end(): void {
		this.#tokenizer.end();
	}

	get state(): BatchScan["state"] {
		return this.#tokenizer.state;
	}

	get problem(): JsonProblem | undefined {
		return this.#tokenizer.problem;
	}

	get requestsArray(): boolean {
		return this.#requests.requestsArray;
	}

	get requests(): number {
		return this.#requests.count;
	}

	get byModel(): ReadonlyMap<string, BatchTally> {
		return this.#requests.byModel;
	}

	get unknown(): BatchTally {
		return this.#requests.unknown;
	}

	get missingMaxTokens(): number {
		return this.#requests.missingMaxTokens;
	}

	get heldBytes(): number {
		let bytes = this.#tokenizer.nestingBytes;
		// Two bytes a UTF-16 unit, and a generous allowance for each entry's map slot and tally.
		for (const model of this.#requests.byModel.keys()) bytes += 2 * model.length + 64;
		return bytes;
	}
}

const ENCODER = new TextEncoder();
const REQUESTS = ENCODER.encode("requests");
const PARAMS = ENCODER.encode("params");
const MODEL = ENCODER.encode("model");
const MAX_TOKENS = ENCODER.encode("max_tokens");
const LONGEST_KEY = MAX_TOKENS.length;

// The levels the handler listens at: the body, the requests array, one request, its params.
const BODY = 1;
const REQUEST_LIST = 2;
const REQUEST = 3;
const PARAMS_LEVEL = 4;

interface Tally {
	requests: number;
	maxTokens: number;
}

/** The tokenizer's handler: follows `requests[*].params` and tallies each request as it closes. */
class BatchRequests implements MemberHandler {
	requestsArray = false;
	count = 0;
	readonly byModel = new Map<string, Tally>();
	readonly unknown: Tally = { requests: 0, maxTokens: 0 };
	missingMaxTokens = 0;
	/** The level of the container the tokenizer reports on. */
	#level = BODY;
	/** Which params member's value comes next: the model's (true) or `max_tokens`'s. */
	#modelNext = false;
	/** The current request's last `model`, kept as read until it closes; undefined when not a string. */
	#model: StringCapture | undefined;
	readonly #modelText = new StringCapture();
	/** The current request's last `max_tokens`, kept as read until it closes; undefined when not a number. */
	#maxTokens: DecimalNumber | undefined;
	readonly #maxTokensNumber = new DecimalNumber();

	key(key: DecodedKey): boolean {
		switch (this.#level) {
			case BODY:
				return key.equals(REQUESTS);
			case REQUEST:
				return key.equals(PARAMS);
			case PARAMS_LEVEL:
				this.#modelNext = key.equals(MODEL);
				return this.#modelNext || key.equals(MAX_TOKENS);
			default:
				return false;
		}
	}

	enter(array: boolean): boolean {
		switch (this.#level) {
			case BODY:
				if (!array) return false;
				this.#restart(true);
				break;
			case REQUEST_LIST:
			case REQUEST:
				// A request, or its params, must be an object; anything else reaches `value`.
				if (array) return false;
				this.#model = undefined;
				this.#maxTokens = undefined;
				break;
			default:
				return false;
		}
		this.#level++;
		return true;
	}

	leave(): void {
		this.#level--;
		if (this.#level === REQUEST_LIST) this.#tally();
	}

	value(kind: ValueKind, number: NumberReader, string: StringCapture): void {
		switch (this.#level) {
			case BODY:
				this.#restart(false);
				break;
			case REQUEST_LIST:
				this.#model = undefined;
				this.#maxTokens = undefined;
				this.#tally();
				break;
			case REQUEST:
				this.#model = undefined;
				this.#maxTokens = undefined;
				break;
			default:
				// Copied as read, not converted: converting every duplicate would cost more than reading it.
				if (this.#modelNext) {
					this.#model = kind === "string" ? this.#modelText : undefined;
					this.#model?.copyFrom(string);
				} else {
					this.#maxTokens = kind === "number" ? this.#maxTokensNumber : undefined;
					this.#maxTokens?.copyFrom(number);
				}
		}
	}

	/** A `requests` member began: it replaces whatever an earlier one counted. */
	#restart(array: boolean): void {
		this.requestsArray = array;
		this.count = 0;
		this.byModel.clear();
		this.unknown.requests = 0;
		this.unknown.maxTokens = 0;
		this.missingMaxTokens = 0;
	}

	/** Counts the request that just ended with the model and `max_tokens` last read for it. */
	#tally(): void {
		const value = this.#maxTokens?.value();
		let maxTokens = 0;
		if (value !== undefined && Number.isSafeInteger(value) && value >= 0) maxTokens = value;
		else this.missingMaxTokens++;
		const model = this.#model?.value();
		let tally = model === undefined ? this.unknown : this.byModel.get(model);
		if (tally === undefined) {
			if (this.byModel.size < MAX_BATCH_MODELS) {
				tally = { requests: 0, maxTokens: 0 };
				this.byModel.set(model as string, tally);
			} else tally = this.unknown;
		}
		tally.requests++;
		tally.maxTokens += maxTokens;
		this.count++;
	}
}
