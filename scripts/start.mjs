#!/usr/bin/env node
// `npm start [-- --port N] [--host H] [--env NAME] [--var NAME=JSON ...] [--origin URL] [--origins N]`:
// serves the guard in front of the demo origin, or in front of the origin at URL with `--origin`, or
// in front of N demo origins that every default route fails over between with `--origins N`. `--var`
// replaces one of wrangler.toml's variables for this run, e.g. `--var 'OVERLOAD={"max_in_flight":5}'`.
import { parseArgs } from "node:util";
import { startLocalStack } from "./lib/local-stack.mjs";

process.env.WRANGLER_SEND_METRICS = "false";

const { values } = parseArgs({
	options: {
		port: { type: "string", default: "8787" },
		host: { type: "string", default: "127.0.0.1" },
		env: { type: "string" },
		var: { type: "string", multiple: true, default: [] },
		origin: { type: "string" },
		origins: { type: "string" },
	},
});
const vars = {};
for (const assignment of values.var) {
	const split = assignment.indexOf("=");
	const name = assignment.slice(0, split);
	try {
		if (split < 1) throw new Error("no variable name");
		vars[name] = JSON.parse(assignment.slice(split + 1));
	} catch (error) {
		const problem = error instanceof Error ? error.message : error;
		console.error(`--var ${JSON.stringify(assignment)}: ${problem}; expected NAME=JSON, e.g. 'OVERLOAD={"max_in_flight":5}'`);
		process.exit(2);
	}
}
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
	console.error(`--port: expected a port number from 0 to 65535, got ${JSON.stringify(values.port)}`);
	process.exit(2);
}

if (values.origin !== undefined && !/^https?:\/\/[^/]/.test(values.origin)) {
	console.error(`--origin: expected an http(s) URL such as http://127.0.0.1:9000, got ${JSON.stringify(values.origin)}`);
	process.exit(2);
}

const origins = values.origins === undefined ? undefined : Number(values.origins);
if (origins !== undefined && (!Number.isInteger(origins) || origins < 2 || origins > 5)) {
	console.error(`--origins: expected a number of demo origins from 2 to 5, got ${JSON.stringify(values.origins)}`);
	process.exit(2);
}
if (origins !== undefined && values.origin !== undefined) {
	console.error("--origins runs demo origins; it cannot be given with --origin");
	process.exit(2);
}

let stack;
try {
	stack = await startLocalStack({ host: values.host, port, env: values.env, vars, origin: values.origin, origins });
} catch (error) {
	console.error(`edge-guard could not start: ${error instanceof Error ? error.message : error}`);
	process.exit(1);
}
const front = values.origin !== undefined ? shown(values.origin) : origins !== undefined ? `${origins} bundled demo origins, failing over in order` : "the bundled demo origin";
console.log(`edge-guard listening on ${stack.url.origin} (in front of ${front})`);
// The operator console (README, "Console"); the demo admin token is local only, like the demo keys.
const adminToken = stack.adminToken === undefined ? "the ADMIN_TOKEN this run was given" : `${stack.adminToken}, local only`;
console.log(`operator console: ${stack.consoleUrl.href} (admin token: ${adminToken})`);

/**
 * An origin URL as it may be printed: never its credentials (user:password@), which the guard
 * refuses anyway.
 * @param {string} origin
 */
function shown(origin) {
	try {
		const url = new URL(origin);
		return `${url.protocol}//${url.host}${url.pathname.replace(/\/$/, "")}`;
	} catch {
		return "an origin URL that does not parse";
	}
}

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"]) {
	process.on(signal, async () => {
		if (stopping) return;
		stopping = true;
		await stack.dispose();
		process.exit(0);
	});
}
