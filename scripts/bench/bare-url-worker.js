// The physical ceiling when the origin is reached by URL: a pass-through with no checks at all,
// the request's path and query on the origin's base URL; workerd streams the body natively.
export default {
	/** @param {Request} request @param {{ ORIGIN_URL: string }} env */
	fetch(request, env) {
		const url = new URL(request.url);
		return fetch(new URL(url.pathname + url.search, env.ORIGIN_URL), request);
	},
};
