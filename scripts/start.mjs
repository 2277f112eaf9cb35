#!/usr/bin/env node
// `npm start [-- --port N] [--host H] [--env NAME]`: serves the guard in front of the demo origin.
import { parseArgs } from "node:util";
import { startLocalStack } from "./lib/local-stack.mjs";

process.env.WRANGLER_SEND_METRICS = "false";

const { values } = parseArgs({
	options: {
		port: { type: "string", default: "8787" },
		host: { type: "string", default: "127.0.0.1" },
		env: { type: "string" },
	},
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
	console.error(`--port: expected a port number from 0 to 65535, got ${JSON.stringify(values.port)}`);
	process.exit(2);
}

let stack;
try {
	stack = await startLocalStack({ host: values.host, port, env: values.env });
} catch (error) {
	console.error(`edge-guard could not start: ${error instanceof Error ? error.message : error}`);
	process.exit(1);
}
console.log(`edge-guard listening on ${stack.url.origin} (in front of the bundled demo origin)`);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"]) {
	process.on(signal, async () => {
		if (stopping) return;
		stopping = true;
		await stack.dispose();
		process.exit(0);
	});
}
