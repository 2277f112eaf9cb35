/**
 * The declared body length: `undefined` when there is no `Content-Length`, a number when it is a
 * valid one, and `null` when it is malformed (RFC 9110 §8.6: one or more digits; a list of equal
 * values is accepted as that value, differing values are not).
 */
export function declaredLength(headers: Headers): number | undefined | null {
	const raw = headers.get("content-length");
	if (raw === null) return undefined;
	// RFC 9110 §5.6.1: list elements are separated by commas with optional spaces and tabs only.
	const values = new Set(raw.split(",").map((value) => value.replace(/^[ \t]+|[ \t]+$/g, "").replace(/^0+(?=[0-9])/, "")));
	if (values.size !== 1) return null;
	const [value] = values;
	if (value === undefined || !/^[0-9]{1,16}$/.test(value)) return null;
	const length = Number(value);
	return Number.isSafeInteger(length) ? length : null;
}

/** Whether a request carries a body: a stream the runtime gives it, unless declared empty. */
export function hasBody(request: Request): boolean {
	return request.body !== null && declaredLength(request.headers) !== 0;
}
