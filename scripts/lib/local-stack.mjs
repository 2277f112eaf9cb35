// The local stack: the guard and the bundled demo origin in bare workerd through Miniflare's API.
// Not `wrangler dev`: its proxy layer turned a Worker's early 413 to a chunked upload into
// "503 Your worker restarted mid-request", while bare workerd delivers the Worker's own answer.
import { Log, LogLevel, Miniflare } from "miniflare";
import { basename, dirname, join, resolve } from "node:path";
import { startDisconnectFront } from "./disconnect-front.mjs";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { buildWorker, ROOT } from "./build-worker.mjs";
import { DEMO_KEYS } from "./demo-keys.mjs";
import { serveAssets } from "./console-assets.mjs";
import { DEMO_ADMIN_TOKEN } from "./demo-admin.mjs";
import { loadTs } from "./load-ts.mjs";

/**
 * Starts the guard (configured by wrangler.toml, environment `env`) in front of the demo origin.
 * Seeds the demo keys (scripts/lib/demo-keys.mjs) into the local KEYS namespace unless
 * `seedDemoKeys` is false; then too, unless the run sets its own, ADMIN_TOKEN is the demo admin
 * token (scripts/lib/demo-admin.mjs), so the operator console at `consoleUrl` is on.
 * `omitVars` removes variables (to run without a feature).
 * `origin` (a URL) puts the guard in front of that origin instead of the demo origin: the `ORIGIN`
 * service binding is dropped and `ORIGIN_URL` set to it.
 * `origins` (2 or more) runs that many demo origins (the first is `ORIGIN`, the others `ORIGIN2`,
 * `ORIGIN3`, ... with `DEMO_ORIGIN_INDEX` 2, 3, ...), and gives every route without an origin of
 * its own an `origins` list of them, in that order of priority (README, "Origins").
 * Clients reach workerd through a TCP front (`disconnect-front.mjs`) that turns a client's close
 * into a reset, so the guard's `request.signal` sees a client leave as it does in production.
 * `jsonLogs` (default: true unless `onStdout` is given): each console call of the Workers is printed
 * as it was made, one call after another, and the guard's calls with a single plain object (its
 * request log line) as that object in one line of JSON; warn and error go to stderr.
 * `onStdout` receives workerd's stdout instead of the terminal: its raw output (objects in
 * multi-line inspect form, as scripts/bench/limits.mjs parses them) unless `jsonLogs` is true, then
 * one line per log/info/debug call.
 * @param {{ host?: string, port?: number, env?: string, vars?: Record<string, unknown>, omitVars?: string[], origin?: string, origins?: number, persist?: boolean, quiet?: boolean, seedDemoKeys?: boolean, jsonLogs?: boolean, onStdout?: (text: string) => void }} options
 * @returns {Promise<{ url: URL, consoleUrl: URL, adminToken: string | undefined, mf: Miniflare, dispose: () => Promise<void> }>}
 */
export async function startLocalStack(options = {}) {
	const [guardScript, originScript] = await Promise.all([
		buildWorker("src/index.ts", "edge-guard"),
		buildWorker("demo-origin/src/index.ts", "demo-origin"),
	]);
	const { workerOptions } = unstable_getMiniflareWorkerOptions(resolve(ROOT, "wrangler.toml"), options.env);
	const bindings = { ...workerOptions.bindings, ...options.vars };
	for (const name of options.omitVars ?? []) delete bindings[name];
	const guardOptions = { ...workerOptions };
	if (options.origin !== undefined) {
		bindings.ORIGIN_URL = options.origin;
		const { ORIGIN: _demoOrigin, ...services } = workerOptions.serviceBindings ?? {};
		guardOptions.serviceBindings = services;
	}
	const demoOrigins = demoOriginWorkers(options.origins ?? 1, originScript, workerOptions.compatibilityDate);
	if (demoOrigins.length > 0) {
		guardOptions.serviceBindings = { ...guardOptions.serviceBindings, ...Object.fromEntries(demoOrigins.map((worker) => [worker.binding, worker.name])) };
		bindings.ROUTES = withDemoOrigins(bindings.ROUTES, demoOrigins.length + 1);
	}
	// The console (README, "Console"): the demo token unless the run brings its own, and its files
	// through an ASSETS binding rather than Miniflare's assets router in front of the guard.
	const seededAdminToken = options.seedDemoKeys !== false && !("ADMIN_TOKEN" in bindings);
	if (seededAdminToken) bindings.ADMIN_TOKEN = DEMO_ADMIN_TOKEN;
	const assets = workerOptions.assets;
	if (assets !== undefined) {
		delete guardOptions.assets;
		guardOptions.serviceBindings = { ...guardOptions.serviceBindings, [assets.binding ?? "ASSETS"]: serveAssets(assets.directory) };
	}
	const jsonLogs = options.jsonLogs ?? options.onStdout === undefined;
	const host = options.host ?? "127.0.0.1";
	const mf = new Miniflare({
		host: "127.0.0.1",
		port: 0,
		log: new FrontLog(options.quiet ? LogLevel.WARN : LogLevel.INFO),
		// Offline: use Miniflare's placeholder `request.cf` instead of fetching one.
		cf: false,
		...runtimeOutput(jsonLogs, options.onStdout),
		defaultPersistRoot: options.persist === false ? undefined : resolve(ROOT, ".wrangler/state/v3"),
		workers: [
			{
				...guardOptions,
				name: "edge-guard",
				...(jsonLogs ? withConsoleJsonLines(guardScript) : { modules: true, scriptPath: guardScript }),
				bindings,
			},
			{
				name: "edge-guard-demo-origin",
				modules: true,
				scriptPath: originScript,
				compatibilityDate: workerOptions.compatibilityDate,
				// Its hang and slow faults end when the caller leaves (demo-origin/wrangler.toml).
				compatibilityFlags: ["enable_request_signal"],
				bindings: { DEMO_ORIGIN_INDEX: "1" },
			},
			...demoOrigins.map(({ binding: _binding, ...worker }) => worker),
		],
	});
	const inner = await mf.ready;
	let front;
	try {
		front = await startDisconnectFront({ host, port: options.port ?? 8787, target: { host: inner.hostname, port: Number(inner.port) } });
	} catch (error) {
		await mf.dispose();
		throw error;
	}
	if (options.seedDemoKeys !== false) await seedKeys(mf, DEMO_KEYS);
	const url = new URL(`http://${host.includes(":") ? `[${host}]` : host}:${front.port}/`);
	return {
		url,
		consoleUrl: new URL("/_guard/", url),
		adminToken: seededAdminToken ? DEMO_ADMIN_TOKEN : undefined,
		mf,
		dispose: async () => {
			await front.close();
			await mf.dispose();
		},
	};
}

/**
 * The demo origins after the first, for `origins` demo origins in all: the same script, each told
 * its number, each bound to the guard as `ORIGIN<n>`.
 * @param {number} count
 * @param {string} scriptPath
 * @param {string | undefined} compatibilityDate
 */
function demoOriginWorkers(count, scriptPath, compatibilityDate) {
	const workers = [];
	for (let index = 2; index <= count; index++) {
		workers.push({
			binding: `ORIGIN${index}`,
			name: `edge-guard-demo-origin-${index}`,
			modules: true,
			scriptPath,
			compatibilityDate,
			compatibilityFlags: ["enable_request_signal"],
			bindings: { DEMO_ORIGIN_INDEX: String(index) },
		});
	}
	return workers;
}

/**
 * The route table with every route that has no origin of its own sent to the demo origins in
 * order of priority: `ORIGIN` first, then `ORIGIN2`, ... A route's own origin is left alone.
 * @param {unknown} routes
 * @param {number} count
 */
function withDemoOrigins(routes, count) {
	const table = typeof routes === "string" ? JSON.parse(routes) : routes;
	if (!Array.isArray(table)) return routes;
	const origins = Array.from({ length: count }, (_, at) => ({ binding: at === 0 ? "ORIGIN" : `ORIGIN${at + 1}`, priority: at + 1 }));
	return table.map((route) => (route.origin === undefined && route.origins === undefined ? { ...route, origins } : route));
}

/**
 * Miniflare's log, less its "Ready on" line: that names workerd's own socket, behind the
 * disconnect front, and the stack prints the front's address instead.
 */
class FrontLog extends Log {
	/** @param {string} message */
	info(message) {
		if (!message.startsWith("Ready on")) super.info(message);
	}
}

/**
 * Stores active keys in the local stack's KEYS namespace, as `npm run keys -- create` would.
 * @param {Miniflare} mf
 * @param {{ key: string, id: string, org_id: string, name: string, scopes: string[] }[]} keys
 */
export async function seedKeys(mf, keys) {
	const { KeyStore, hashApiKey } = await loadTs("scripts/lib/key-tools.ts");
	const store = new KeyStore(await mf.getKVNamespace("KEYS", "edge-guard"));
	for (const { key, ...fields } of keys) {
		await store.save({ ...fields, hash: await hashApiKey(key), workspace_id: null, status: "active", created_at: new Date(0).toISOString() });
	}
}

/**
 * Where workerd's output goes. With `jsonLogs`, through Miniflare's `handleStructuredLogs`: workerd
 * runs with `--structured-logging`, so every console call arrives whole, as one
 * `{ timestamp, level, message }` (the message formatted as console.log would), however many lines
 * it spans; Miniflare then no longer pipes workerd's raw stdio itself.
 * @param {boolean} jsonLogs
 * @param {((text: string) => void) | undefined} onStdout
 */
function runtimeOutput(jsonLogs, onStdout) {
	if (jsonLogs) {
		return {
			handleStructuredLogs: (/** @type {{ level: string, message: string }} */ { level, message }) => {
				// Miniflare checks that this returns nothing.
				const toStderr = level === "warn" || level === "error";
				if (onStdout) {
					if (!toStderr) onStdout(`${message}\n`);
				} else {
					(toStderr ? process.stderr : process.stdout).write(`${message}\n`);
				}
			},
		};
	}
	if (onStdout) {
		return {
			handleRuntimeStdio: (/** @type {import("node:stream").Readable} */ stdout, /** @type {import("node:stream").Readable} */ stderr) => {
				stdout.on("data", (chunk) => onStdout(String(chunk)));
				stderr.resume();
			},
		};
	}
	return {};
}

/**
 * Local only, so `console.log(object)` stays what Workers Logs indexes once deployed: the Worker
 * formats a single plain-object argument as JSON before workerd sees it. Under Miniflare the object
 * would otherwise print in multi-line inspect form, cut at depth 2 (`[Object]`) and 100 array items,
 * which no structured-log option undoes. Anything else (strings, several arguments, an Error, an
 * object JSON cannot hold) is logged untouched.
 */
const CONSOLE_JSON_LINES = `
const isPlainObject = (value) => {
	if (value === null || typeof value !== "object") return false;
	const prototype = Object.getPrototypeOf(value);
	return prototype === Object.prototype || prototype === null;
};
for (const level of ["debug", "info", "log", "warn", "error"]) {
	const original = console[level].bind(console);
	console[level] = (...args) => {
		if (args.length === 1 && isPlainObject(args[0])) {
			let line;
			try {
				line = JSON.stringify(args[0]);
			} catch {
				// A BigInt or a cycle: leave it to workerd's own formatting.
			}
			if (typeof line === "string") return original(line);
		}
		return original(...args);
	};
}
`;

/**
 * The guard's bundle behind an entry module that installs CONSOLE_JSON_LINES first and re-exports
 * the bundle (its default handler and its Durable Object classes). The bundle itself is unchanged.
 * @param {string} guardScript
 */
function withConsoleJsonLines(guardScript) {
	const folder = dirname(guardScript);
	const bundle = JSON.stringify(`./${basename(guardScript)}`);
	return {
		modulesRoot: folder,
		modules: [
			{
				type: /** @type {const} */ ("ESModule"),
				path: join(folder, "edge-guard-local-entry.mjs"),
				contents: `import "./console-json-lines.mjs";\nexport * from ${bundle};\nexport { default } from ${bundle};\n`,
			},
			{ type: /** @type {const} */ ("ESModule"), path: join(folder, "console-json-lines.mjs"), contents: CONSOLE_JSON_LINES },
			{ type: /** @type {const} */ ("ESModule"), path: guardScript },
		],
	};
}
