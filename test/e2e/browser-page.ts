import { build } from "esbuild";
import { existsSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";

/** A web page on its own local origin, whose script is test/e2e/browser-entry.ts. */
export interface PageServer {
	/** The page's origin, e.g. `http://127.0.0.1:41234`; the page itself is at `${origin}/`. */
	readonly origin: string;
	readonly stop: () => Promise<void>;
}

/** Where Debian's `chromium` package puts the browser; `CHROMIUM_PATH` overrides it. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/**
 * The browser executable, or an error saying how to install it: the browser test never skips.
 */
export function chromiumPath(): string {
	if (!existsSync(CHROMIUM_PATH)) {
		throw new Error(
			`test/e2e/browser.test.ts needs Chromium at ${CHROMIUM_PATH} (Debian: apt-get install -y chromium, as .ci/run does; or set CHROMIUM_PATH)`,
		);
	}
	return CHROMIUM_PATH;
}

/** The page's script: the entry and the official SDK, bundled for the browser. */
async function bundle(): Promise<string> {
	const result = await build({
		entryPoints: [resolve(__dirname, "browser-entry.ts")],
		bundle: true,
		format: "esm",
		platform: "browser",
		target: "es2022",
		write: false,
		logLevel: "silent",
	});
	const file = result.outputFiles[0];
	if (file === undefined) throw new Error("esbuild produced no bundle for browser-entry.ts");
	return file.text;
}

const PAGE = '<!doctype html>\n<meta charset="utf-8">\n<title>edge-guard browser test</title>\n<script type="module" src="/page.js"></script>\n';

/** Serves the page and its bundle on a free loopback port, another origin than the guard's. */
export async function startPageServer(): Promise<PageServer> {
	const script = await bundle();
	const server = createServer((request, response) => {
		if (request.url === "/") {
			response.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(PAGE);
		} else if (request.url === "/page.js") {
			response.writeHead(200, { "content-type": "text/javascript; charset=utf-8" }).end(script);
		} else {
			// Chromium asks for /favicon.ico; a 404 would add a console error to every failure report.
			response.writeHead(204).end();
		}
	});
	await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
	const { port } = server.address() as AddressInfo;
	return {
		origin: `http://127.0.0.1:${port}`,
		stop: () => new Promise<void>((done) => server.close(() => done())),
	};
}
