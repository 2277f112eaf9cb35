/**
 * The shapes the demo origin writes, as the API writes them. The official SDK's types declare
 * some fields as always present but `null` when unused (a text block's `citations`, a message's
 * `container`, `diagnostics` and `stop_details`, several `usage` counters); the API leaves those
 * out, and clients with strict schemas refuse the `null` (the Vercel AI SDK's `generateText`
 * fails with "Invalid JSON response" on `"citations": null`). Each shape here is the SDK's type
 * with those fields omitted, so every field written is still one the SDK declares, with its type
 * (test/e2e/demo-origin-shapes.test.ts checks both at compile time and at run time).
 *
 * Types only, with no runtime code or Workers globals, so the tests can import them.
 */
import type { MessageBatchIndividualResponse } from "@anthropic-ai/sdk/resources/messages/batches";
import type { Message, RawMessageStreamEvent, TextBlock, Usage } from "@anthropic-ai/sdk/resources/messages";

/** A text block: `citations` only when there are some, so never here. */
export type WireTextBlock = Omit<TextBlock, "citations">;

/** `usage` as the API writes it when no server tool, geography or speed option was used. */
export type WireUsage = Pick<
	Usage,
	"input_tokens" | "output_tokens" | "cache_creation_input_tokens" | "cache_read_input_tokens" | "cache_creation" | "service_tier"
>;

/** A message: no `container`, `diagnostics` or `stop_details` unless the request used them. */
export type WireMessage = Omit<Message, "content" | "usage" | "container" | "diagnostics" | "stop_details"> & {
	content: WireTextBlock[];
	usage: WireUsage;
};

/** One line of a batch's results: a succeeded result carries a {@link WireMessage}. */
export type WireBatchResult = Omit<MessageBatchIndividualResponse, "result"> & {
	result: { type: "succeeded"; message: WireMessage };
};

type MessageDelta = Extract<RawMessageStreamEvent, { type: "message_delta" }>;

/**
 * A stream event as the API writes it: message_start's message is a {@link WireMessage}; a text
 * block starts without `citations`; message_delta's delta has only `stop_reason` and
 * `stop_sequence`, and its usage only `output_tokens` (the SDK overwrites only the counters present).
 */
export type WireStreamEvent =
	| Exclude<RawMessageStreamEvent, { type: "message_start" | "content_block_start" | "message_delta" }>
	| { type: "message_start"; message: WireMessage }
	| { type: "content_block_start"; index: number; content_block: WireTextBlock }
	| {
			type: "message_delta";
			delta: Pick<MessageDelta["delta"], "stop_reason" | "stop_sequence">;
			usage: Pick<MessageDelta["usage"], "output_tokens">;
	  }
	| { type: "ping" };
