// The physical ceiling: a pass-through with no checks at all; workerd streams the body natively.
export default {
	/** @param {Request} request @param {{ ORIGIN: Fetcher }} env */
	fetch: (request, env) => env.ORIGIN.fetch(request),
};
