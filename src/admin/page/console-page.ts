import { GuardError } from "../../errors/guard-error";

/**
 * The console's page and its files (`public/_guard/`, Workers Static Assets through the `ASSETS`
 * binding). The page holds no secret: it asks for the admin token and keeps it in the tab's
 * `sessionStorage`. Served with a strict content security policy: its own scripts and styles only.
 */
const SECURITY_HEADERS: Record<string, string> = {
	"content-security-policy":
		"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
	"x-content-type-options": "nosniff",
	"x-frame-options": "DENY",
	"referrer-policy": "no-referrer",
	"cache-control": "no-cache",
};

/** Serves a file of the console (GET or HEAD), or `404`. */
export async function serveConsoleFile(request: Request, url: URL, assets: Fetcher | undefined): Promise<Response> {
	if (request.method !== "GET" && request.method !== "HEAD") {
		throw new GuardError(405, `${request.method} is not allowed on the console's pages; allowed: GET, HEAD.`, { headers: { allow: "GET, HEAD" } });
	}
	if (assets === undefined) throw new GuardError(404, "The console's files are not bound (ASSETS); see README, Console.");
	// Only the path goes to the assets (`/_guard/` is its index.html), never a client's headers or query.
	const served = await assets.fetch(new Request(new URL(url.pathname, url.origin), { method: request.method }));
	if (served.status === 404) {
		await served.body?.cancel();
		throw new GuardError(404, "The requested resource could not be found.");
	}
	const response = new Response(served.body, served);
	for (const [name, value] of Object.entries(SECURITY_HEADERS)) response.headers.set(name, value);
	return response;
}
