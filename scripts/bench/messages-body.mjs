// Request bodies shaped like the Messages API: a small everyday request, and large ones of an exact
// size whose bulk is one long text (what the 10-minute rule's scanner has to read through).

const TURNS = [
	["user", "I am writing a small command-line tool that reads a CSV export of our support tickets and groups them by product area. Each row has an id, a created_at timestamp in ISO 8601, a free-text subject, a body, and a comma-separated list of tags. Some bodies contain quoted newlines. What is a robust way to parse this in TypeScript without pulling in a heavy dependency?"],
	["assistant", "For a file with quoted newlines you need a real state machine rather than splitting on line breaks. Read the file as a stream, keep a flag for whether you are inside a quoted field, treat a doubled quote inside quotes as a literal quote, and only end a record on a newline outside quotes. Emit each record as an array of strings, then map the header row to field names. That is about forty lines and handles every case RFC 4180 describes."],
	["user", "Thanks. The tags column is the tricky part: tags are separated by commas inside the quoted field, and some tags have spaces around them. Others are empty strings because someone typed two commas in a row. I want to normalise them to lower case, trim them, drop the empty ones and count how often each tag appears per product area. Could you sketch the grouping step, and say how you would test it with a few tricky rows?"],
	["assistant", "Split the tags field on commas, trim and lower-case each piece, and filter out empty strings. Keep a Map from product area to a Map from tag to count, creating inner maps on first sight. For tests, write rows with a quoted newline in the body, a doubled quote, a tags field with spaces and an empty tag, and a row whose area appears for the first time; assert the exact counts. A property test that round-trips generated rows through a writer and your parser is worth adding too."],
	["user", "Good. Last thing: the export is about 40 MB and grows every week. Should I worry about memory, and how would I report progress to the user without slowing the parse down? For context, the tool runs on developer laptops and in a nightly CI job; in CI nobody watches the output, so the progress lines should not flood the log, but on a laptop people like to see that something is happening. I would also like the tool to exit with a clear message, not a stack trace, when a row is malformed, naming the line number. Please keep the answer short and include a code sketch of the progress reporting."],
];

const SYSTEM = "You are a careful senior engineer. Answer concisely, prefer the standard library, and point out edge cases the user has not mentioned. When you show code, show TypeScript that compiles under strict mode.";

/**
 * A realistic Messages request of about `bytes` bytes (3 KB by default): model, max_tokens,
 * system, a five-turn conversation of plain text, and metadata; valid JSON, non-streaming, with a
 * max_tokens well inside the 10-minute rule.
 */
export function messagesRequest(bytes = 3 * 1024) {
	const body = {
		model: "claude-sonnet-4-6",
		max_tokens: 1024,
		system: SYSTEM,
		messages: TURNS.map(([role, text]) => ({ role, content: [{ type: "text", text }] })),
		metadata: { user_id: "user_0c7f3a9e21" },
		temperature: 0.3,
	};
	let text = JSON.stringify(body);
	// Pad the metadata so the body lands on the size asked for, whatever the turns add up to.
	const short = bytes - text.length;
	if (short > 0) {
		body.metadata.user_id += "x".repeat(short);
		text = JSON.stringify(body);
	}
	return text;
}

/**
 * The opening and closing of a JSON body of exactly `bytes` bytes whose middle is filler bytes
 * (`a`) inside one text string, so a client can stream it from a reused buffer. `kind`: a Messages
 * request, or a Message Batches request holding one such request.
 * @param {"messages" | "batch"} kind
 * @param {number} bytes
 */
export function largeJsonFrame(kind, bytes) {
	const messages = '"model":"claude-sonnet-4-6","max_tokens":1024,"messages":[{"role":"user","content":"';
	const prefix = kind === "messages" ? `{${messages}` : `{"requests":[{"custom_id":"bench-1","params":{${messages}`;
	const suffix = kind === "messages" ? '"}]}' : '"}]}}]}';
	const head = Buffer.from(prefix);
	const tail = Buffer.from(suffix);
	if (head.length + tail.length > bytes) throw new Error(`a ${kind} body cannot be as small as ${bytes} bytes`);
	return { head, tail };
}
