import { type ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";

/** `npx wrangler dev` with the guard's and the demo origin's configurations, on a free port. */
export interface WranglerDev {
	readonly url: string;
	readonly output: () => string;
	readonly stop: () => Promise<void>;
}

const ROOT = resolve(__dirname, "../..");

/**
 * Starts wrangler's multi-config dev session (`wrangler dev -c wrangler.toml -c
 * demo-origin/wrangler.toml`), as the README's "Clients" section tells a newcomer to, and resolves
 * once it prints where it listens. Its state is the project's `.wrangler/state`, the same as
 * `npm start`'s, so keys `npm start` seeded or `npm run keys` created work in it.
 */
export function startWranglerDev(): Promise<WranglerDev> {
	const child: ChildProcess = spawn(
		resolve(ROOT, "node_modules/.bin/wrangler"),
		["dev", "-c", "wrangler.toml", "-c", "demo-origin/wrangler.toml", "--ip", "127.0.0.1", "--port", "0", "--inspector-port", "0", "--show-interactive-dev-session=false"],
		{
			cwd: ROOT,
			env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
			stdio: ["ignore", "pipe", "pipe"],
			// Its own process group, so that stopping it also stops the workerd it started.
			detached: true,
		},
	);
	let output = "";
	const exited = new Promise<void>((done) => child.once("exit", () => done()));
	return new Promise((resolveDev, reject) => {
		const onData = (chunk: Buffer) => {
			output += chunk.toString();
			const found = /Ready on (http:\/\/[^\s]+)/.exec(output);
			if (found?.[1]) {
				resolveDev({
					url: found[1],
					output: () => output,
					stop: async () => {
						if (child.exitCode === null && child.pid !== undefined) process.kill(-child.pid, "SIGTERM");
						await exited;
					},
				});
			}
		};
		child.stdout?.on("data", onData);
		child.stderr?.on("data", onData);
		child.once("exit", (code) => reject(new Error(`wrangler dev exited (${code}) before listening:\n${output}`)));
	});
}
