// The console's static files for the local stack. Deployed, Workers Static Assets serves them
// (wrangler.toml [assets], binding ASSETS); locally the guard stays Miniflare's entry Worker (its
// assets router would put a Worker of its own in front of the guard, changing what the hostile
// suite measures), and the ASSETS binding is this function over the same folder.
import { readFile, stat } from "node:fs/promises";
import { extname, resolve, sep } from "node:path";
import { Response } from "miniflare";

const TYPES = {
	".html": "text/html; charset=utf-8",
	".js": "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".txt": "text/plain; charset=utf-8",
	".svg": "image/svg+xml",
	".png": "image/png",
	".ico": "image/x-icon",
};

/**
 * A fetch handler serving `directory` as Workers Static Assets would (default html_handling):
 * `/dir/` is `/dir/index.html`, a folder without its slash is redirected, nothing outside it.
 * @param {string} directory
 * @returns {(request: Request) => Promise<Response>}
 */
export function serveAssets(directory) {
	const root = resolve(directory);
	return async function assets(request) {
		const { pathname } = new URL(request.url);
		let path;
		try {
			path = decodeURIComponent(pathname);
		} catch {
			return new Response("Not Found", { status: 404 });
		}
		const file = resolve(root, `.${path.endsWith("/") ? `${path}index.html` : path}`);
		if (file !== root && !file.startsWith(root + sep)) return new Response("Not Found", { status: 404 });
		const found = await stat(file).catch(() => undefined);
		if (found?.isDirectory()) return new Response(null, { status: 307, headers: { location: `${pathname}/` } });
		if (!found?.isFile()) return new Response("Not Found", { status: 404 });
		const body = request.method === "HEAD" ? null : await readFile(file);
		return new Response(body, {
			status: 200,
			headers: { "content-type": TYPES[extname(file)] ?? "application/octet-stream", "content-length": String(found.size) },
		});
	};
}
