// Portkey's open-source gateway as a benchmark subject (`npm run bench -- peers`, issue 22): the
// `@portkey-ai/gateway` npm package's Node build, installed on demand into an ignored folder (never a
// dependency of the project), patched by one line so its generic pass-through `GET` works, and
// started on a free loopback port, routed to the bench's origin as an Anthropic provider with a
// custom host.
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { ROOT } from "../lib/build-worker.mjs";
import { freePort } from "../lib/free-port.mjs";

/** The version issue 22 measured. */
export const PORTKEY_VERSION = "1.15.2";
/** Where the bench installs it (in .gitignore). */
export const PORTKEY_DIR = resolve(ROOT, ".bench-peers/portkey");
const PACKAGE_DIR = resolve(PORTKEY_DIR, "node_modules/@portkey-ai/gateway");
const ENTRY = resolve(PACKAGE_DIR, "build/start-server.js");

/**
 * As published, 1.15.2's `ResponseService.create` appends its `x-portkey-*` headers to the response
 * it got; on the generic pass-through (`endpoint` "proxy", e.g. `GET /v1/models`) that is the
 * `fetch()` response itself, whose headers are immutable in Node, so every such request answers
 * `500` (`TypeError: immutable`, upstream issues #1389 and #1550). The patch copies that one
 * response into a new `Response` first (what upstream pull request #1551 does for its own path);
 * every other endpoint, `POST /v1/messages` included, runs exactly as published.
 */
export const PORTKEY_PATCH = {
	file: "build/start-server.js",
	original: "this.updateHeaders(i,n.cacheStatus,o)",
	patched: '"proxy"===this.context.endpoint&&(i=new Response(i.body,i)),this.updateHeaders(i,n.cacheStatus,o)',
};

/**
 * @typedef {object} PortkeyInstall
 * @property {string} version
 * @property {Record<string, string>} runtime the installed versions of the packages its HTTP path runs on
 */

/**
 * Installs the pinned version into PORTKEY_DIR unless it is there already, and applies the patch
 * (idempotently). Resolves `{ unavailable }` with the reason when it cannot (no registry, an
 * unexpected build), so the bench can run without it.
 * @param {(message: string) => void} progress
 * @returns {Promise<PortkeyInstall | { unavailable: string }>}
 */
export async function preparePortkey(progress) {
	if (installedVersion() !== PORTKEY_VERSION) {
		progress(`installing @portkey-ai/gateway@${PORTKEY_VERSION} into ${PORTKEY_DIR} (npm install --ignore-scripts)`);
		const npm = await run("npm", [
			"install",
			"--prefix",
			PORTKEY_DIR,
			"--ignore-scripts",
			"--no-save",
			"--no-audit",
			"--no-fund",
			"--fetch-retries=1",
			"--fetch-timeout=30000",
			`@portkey-ai/gateway@${PORTKEY_VERSION}`,
		]);
		if (npm.code !== 0 || installedVersion() !== PORTKEY_VERSION) {
			return { unavailable: `could not install @portkey-ai/gateway@${PORTKEY_VERSION} from the npm registry (npm exited ${npm.code}: ${npm.output.trim().split("\n").slice(0, 3).join(" / ")})` };
		}
	}
	const file = resolve(PACKAGE_DIR, PORTKEY_PATCH.file);
	const text = readFileSync(file, "utf8");
	if (!text.includes(PORTKEY_PATCH.patched)) {
		const count = text.split(PORTKEY_PATCH.original).length - 1;
		if (count !== 1) return { unavailable: `its ${PORTKEY_PATCH.file} holds the patched line ${count} times, not once: not the build this bench patches` };
		writeFileSync(file, text.replace(PORTKEY_PATCH.original, PORTKEY_PATCH.patched));
		progress(`patched ${PORTKEY_PATCH.file}: ${PORTKEY_PATCH.original} -> ${PORTKEY_PATCH.patched}`);
	}
	const runtime = Object.fromEntries(["hono", "@hono/node-server"].map((name) => [name, packageVersion(resolve(PORTKEY_DIR, "node_modules", name)) ?? "?"]));
	return { version: PORTKEY_VERSION, runtime };
}

/**
 * @typedef {object} PortkeySubject
 * @property {URL} url
 * @property {number | undefined} pid its Node process
 * @property {Record<string, string>} headers what every request needs to reach the origin through it
 * @property {() => Promise<void>} dispose
 */

/**
 * Starts the gateway (`node build/start-server.js --port=N --headless`) and waits until it answers.
 * Its output (a stack trace per request on some paths) is read and dropped, as workerd's is.
 * @param {URL} originUrl the origin's base URL; the gateway calls `<origin>/v1` + the endpoint
 * @returns {Promise<PortkeySubject>}
 */
export async function startPortkey(originUrl) {
	const port = await freePort();
	const child = spawn(process.execPath, [ENTRY, `--port=${port}`, "--headless"], { cwd: dirname(ENTRY), stdio: ["ignore", "pipe", "pipe"] });
	let output = "";
	const keep = (/** @type {Buffer} */ chunk) => {
		if (process.env.BENCH_VERBOSE) process.stderr.write(chunk);
		output = (output + chunk.toString()).slice(-4096);
	};
	child.stdout.on("data", keep);
	child.stderr.on("data", keep);
	/** @type {number | null | undefined} */
	let exited;
	child.on("exit", (code) => {
		exited = code;
	});
	const dispose = async () => {
		if (exited !== undefined) return;
		const gone = new Promise((done) => child.once("exit", done));
		child.kill("SIGTERM");
		await Promise.race([gone, new Promise((done) => setTimeout(done, 5000))]);
		if (exited === undefined) child.kill("SIGKILL");
	};
	const url = new URL(`http://127.0.0.1:${port}/`);
	const deadline = Date.now() + 30_000;
	for (;;) {
		if (exited !== undefined) throw new Error(`Portkey's gateway exited (${exited}) before answering: ${output.trim().slice(-500)}`);
		try {
			const response = await fetch(url);
			if ((await response.text()).includes("AI Gateway")) break;
		} catch {
			// not listening yet
		}
		if (Date.now() > deadline) {
			await dispose();
			throw new Error(`Portkey's gateway did not answer within 30 s: ${output.trim().slice(-500)}`);
		}
		await new Promise((done) => setTimeout(done, 100));
	}
	return {
		url,
		pid: child.pid,
		headers: { "x-portkey-provider": "anthropic", "x-portkey-custom-host": new URL("/v1", originUrl).href },
		dispose,
	};
}

function installedVersion() {
	return existsSync(ENTRY) ? packageVersion(PACKAGE_DIR) : undefined;
}

/** @param {string} dir */
function packageVersion(dir) {
	try {
		return String(JSON.parse(readFileSync(resolve(dir, "package.json"), "utf8")).version);
	} catch {
		return undefined;
	}
}

/**
 * @param {string} command
 * @param {string[]} args
 * @returns {Promise<{ code: number | null, output: string }>}
 */
function run(command, args) {
	return new Promise((done) => {
		const child = spawn(command, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
		let output = "";
		child.stdout.on("data", (chunk) => (output += chunk));
		child.stderr.on("data", (chunk) => (output += chunk));
		child.on("error", (error) => done({ code: -1, output: String(error) }));
		child.on("exit", (code) => done({ code, output }));
	});
}
