import type { DecodedKey } from "./json/decoded-key";
import { DecimalNumber, type NumberReader } from "./json/number";
import { StringCapture } from "./json/string-capture";
import { JsonObjectTokenizer, type MemberHandler, type ValueKind } from "./json/tokenizer";
import { type ReportedUsage, readModel, readUsage } from "./usage-tap";

/** One line of a batch's results, as {@link batchResultsUsage} read it: the usage fields are {@link ReportedUsage}'s. */
export interface BatchResultLine extends Pick<ReportedUsage, "model" | "inputTokens" | "outputTokens" | "cacheCreationInputTokens" | "cacheReadInputTokens"> {
	/** The line's `custom_id`, when a string of at most 256 bytes of JSON text. */
	customId?: string;
	/** Whether `result.type` is `succeeded`; only then are `model` and the usage counters read. */
	succeeded: boolean;
	/**
	 * False when the line is not one whole JSON object: malformed, or cut off by the end of the
	 * stream. Its fields then hold what was read before the fault.
	 */
	complete: boolean;
}

/** Reads a batch's results stream chunk by chunk; see {@link batchResultsUsage}. */
export interface BatchResultsReader {
	/** Feeds the next bytes of the stream. Never throws on bad JSON (only what `onLine` throws). */
	push(chunk: Uint8Array): void;
	/** The stream ended (or broke off): a last line without its newline is reported now. */
	end(): void;
}

/**
 * Reads the JSONL stream of `GET /v1/messages/batches/:id/results`, one JSON object a line, and
 * calls `onLine` for each non-blank line, in order, with its `custom_id` and, for a succeeded
 * result, the model and usage of `result.message`. Lines are streamed through the
 * {@link JsonObjectTokenizer}, not kept: memory does not grow with a line's length (but by one
 * bit per level of nesting), so no line is too long to read and no usage is lost to length. A line
 * is read as `JSON.parse` reads it: the last of duplicate keys wins at every level, and usage
 * counters follow {@link readUsage}'s rules. Chunks are not retained.
 */
export function batchResultsUsage(onLine: (line: BatchResultLine) => void): BatchResultsReader {
	return new ResultsReader(onLine);
}

const NEWLINE = 0x0a;

class ResultsReader implements BatchResultsReader {
	readonly #onLine: (line: BatchResultLine) => void;
	readonly #fields = new ResultFields();
	/** The current line's tokenizer; undefined while the line is blank so far. */
	#line: JsonObjectTokenizer | undefined;

	constructor(onLine: (line: BatchResultLine) => void) {
		this.#onLine = onLine;
	}

	push(chunk: Uint8Array): void {
		let from = 0;
		while (from < chunk.length) {
			const newline = chunk.indexOf(NEWLINE, from);
			const end = newline < 0 ? chunk.length : newline;
			if (end > from) this.#feed(chunk.subarray(from, end));
			if (newline < 0) return;
			this.#endLine();
			from = newline + 1;
		}
	}

	end(): void {
		this.#endLine();
	}

	#feed(bytes: Uint8Array): void {
		if (this.#line === undefined) {
			if (isBlank(bytes)) return;
			this.#fields.reset();
			this.#line = new JsonObjectTokenizer(this.#fields, LONGEST_KEY);
		}
		this.#line.push(bytes);
	}

	#endLine(): void {
		const line = this.#line;
		if (line === undefined) return;
		this.#line = undefined;
		line.end();
		this.#onLine(this.#fields.line(line.state === "complete"));
	}
}

function isBlank(bytes: Uint8Array): boolean {
	for (const byte of bytes) if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0d) return false;
	return true;
}

const ENCODER = new TextEncoder();
const CUSTOM_ID = ENCODER.encode("custom_id");
const RESULT = ENCODER.encode("result");
const TYPE = ENCODER.encode("type");
const MESSAGE = ENCODER.encode("message");
const MODEL = ENCODER.encode("model");
const USAGE = ENCODER.encode("usage");
/** The usage counters, in the order of `#counters`. */
const COUNTERS = ["input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"] as const;
const COUNTER_KEYS = COUNTERS.map((name) => ENCODER.encode(name));
const LONGEST_KEY = Math.max(...COUNTER_KEYS.map((key) => key.length));

// The levels the handler listens at: the line, its result, the message, the usage.
const LINE = 1;
const RESULT_LEVEL = 2;
const MESSAGE_LEVEL = 3;
const USAGE_LEVEL = 4;

// What the next wanted value is.
const CUSTOM_ID_VALUE = 0;
const TYPE_VALUE = 1;
const MODEL_VALUE = 2;
const OTHER_VALUE = 3;
/** The first counter's; the others follow. */
const COUNTER_VALUE = 4;

/** The tokenizer's handler for one line: follows `custom_id`, `result.type`, `result.message.{model,usage}`. */
class ResultFields implements MemberHandler {
	#level = LINE;
	#next = OTHER_VALUE;
	// Kept as read until the line ends: each duplicate replaces the earlier, and only the last is decoded.
	readonly #customId = new StringCapture();
	#hasCustomId = false;
	readonly #type = new StringCapture();
	#hasType = false;
	readonly #model = new StringCapture();
	#hasModel = false;
	readonly #counters = COUNTERS.map(() => new DecimalNumber());
	readonly #hasCounter = COUNTERS.map(() => false);

	/** Starts a new line. */
	reset(): void {
		this.#level = LINE;
		this.#hasCustomId = false;
		this.#resetResult();
	}

	key(key: DecodedKey): boolean {
		switch (this.#level) {
			case LINE:
				this.#next = key.equals(CUSTOM_ID) ? CUSTOM_ID_VALUE : key.equals(RESULT) ? OTHER_VALUE : -1;
				break;
			case RESULT_LEVEL:
				this.#next = key.equals(TYPE) ? TYPE_VALUE : key.equals(MESSAGE) ? OTHER_VALUE : -1;
				break;
			case MESSAGE_LEVEL:
				this.#next = key.equals(MODEL) ? MODEL_VALUE : key.equals(USAGE) ? OTHER_VALUE : -1;
				break;
			case USAGE_LEVEL: {
				const counter = COUNTER_KEYS.findIndex((name) => key.equals(name));
				this.#next = counter < 0 ? -1 : COUNTER_VALUE + counter;
				break;
			}
			default:
				this.#next = -1;
		}
		return this.#next >= 0;
	}

	enter(array: boolean): boolean {
		// Only `result`, `message` and `usage` are entered, and only as objects; a second one
		// replaces what the first held, as does a value of them that is no object.
		if (array || this.#next !== OTHER_VALUE) return false;
		this.#replaced();
		this.#level++;
		return true;
	}

	leave(): void {
		this.#level--;
	}

	value(kind: ValueKind, number: NumberReader, string: StringCapture): void {
		const next = this.#next;
		if (next === OTHER_VALUE) this.#replaced();
		else if (next === CUSTOM_ID_VALUE) this.#hasCustomId = capture(this.#customId, kind, string);
		else if (next === TYPE_VALUE) this.#hasType = capture(this.#type, kind, string);
		else if (next === MODEL_VALUE) this.#hasModel = capture(this.#model, kind, string);
		else {
			const counter = next - COUNTER_VALUE;
			this.#hasCounter[counter] = kind === "number";
			if (kind === "number") this.#counters[counter]?.copyFrom(number);
		}
	}

	/** The line as read; `complete` when its object closed. */
	line(complete: boolean): BatchResultLine {
		const line: BatchResultLine = { succeeded: this.#hasType && this.#type.value() === "succeeded", complete };
		if (this.#hasCustomId) line.customId = this.#customId.value();
		if (!line.succeeded) return line;
		const usage: Record<string, number> = {};
		COUNTERS.forEach((name, counter) => {
			if (this.#hasCounter[counter]) usage[name] = (this.#counters[counter] as DecimalNumber).value();
		});
		const message = { model: this.#hasModel ? this.#model.value() : undefined, usage };
		readUsage(message, line);
		readModel(message, line);
		return line;
	}

	/** A `result`, `message` or `usage` member began (at `#level`): what an earlier one held is gone. */
	#replaced(): void {
		if (this.#level === LINE) this.#resetResult();
		else if (this.#level === RESULT_LEVEL) this.#resetMessage();
		else this.#hasCounter.fill(false);
	}

	#resetResult(): void {
		this.#hasType = false;
		this.#resetMessage();
	}

	#resetMessage(): void {
		this.#hasModel = false;
		this.#hasCounter.fill(false);
	}
}

/** Copies a string value as read; false when the value is not a string (or too long to capture). */
function capture(into: StringCapture, kind: ValueKind, string: StringCapture): boolean {
	if (kind !== "string") return false;
	into.copyFrom(string);
	return true;
}
