import { type FieldScan, scanTopLevelFields } from "./json/top-level-fields";
import { TIMED_OUT, within } from "./within";

/** How far {@link peekTopLevelFields} may look. */
export interface PeekBounds {
	/** The most body bytes read. */
	readonly maxBytes: number;
	/** The longest it waits for them, ms. */
	readonly maxMs: number;
}

/**
 * The top-level `fields` of a request's JSON body as `JSON.parse` reads them (the last of duplicate
 * keys wins, escapes decoded, whatever the chunking): `complete` when the body's whole object was
 * read within the bounds; otherwise the values seen so far, which a later duplicate may replace.
 * `undefined` when the body is not a JSON object. The request keeps every byte:
 * `request.clone()` tees the body (natively, in workerd), the request keeps one branch and the peek
 * reads the other, then cancels it.
 */
export async function peekTopLevelFields(request: Request, fields: readonly string[], bounds: PeekBounds): Promise<{ complete: boolean; scan: FieldScan } | undefined> {
	if (request.body === null || request.bodyUsed) return undefined;
	const reader = request.clone().body?.getReader();
	if (reader === undefined) return undefined;
	const scan = scanTopLevelFields(fields);
	const deadline = Date.now() + bounds.maxMs;
	let bytes = 0;
	try {
		while (bytes <= bounds.maxBytes) {
			const next = await within(reader.read(), Math.max(0, deadline - Date.now()));
			if (next === TIMED_OUT) break;
			if (next.done) {
				scan.end();
				break;
			}
			bytes += next.value.byteLength;
			scan.push(next.value);
			if (scan.state === "invalid") break;
		}
	} catch {
		// A body that broke off: what was seen is all there is.
	} finally {
		reader.cancel().catch(() => undefined);
	}
	if (scan.state === "invalid") return undefined;
	return { complete: scan.state === "complete", scan };
}
