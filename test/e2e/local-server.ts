import { type ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";

/** The real local server (`npm start`'s script) on a free loopback port. */
export interface LocalServer {
	url: string;
	/** Everything the server printed so far (stdout and stderr). */
	output: () => string;
	stop: () => Promise<void>;
}

const ROOT = resolve(__dirname, "../..");

/**
 * Starts `scripts/start.mjs --port 0` and resolves once it prints where it listens. A start that
 * the runtime itself fails (`edge-guard could not start`, exit 1: seen once in CI as Miniflare's
 * internal assertion `false == true` on a busy machine) is tried once more; any other exit, and a
 * second failure, rejects with everything the server printed.
 */
export async function startLocalServer(extraArgs: string[] = []): Promise<LocalServer> {
	try {
		return await startOnce(extraArgs);
	} catch (error) {
		if (!(error instanceof StartFailed) || !error.retryable) throw error;
		return startOnce(extraArgs);
	}
}

class StartFailed extends Error {
	constructor(
		message: string,
		readonly retryable: boolean,
	) {
		super(message);
	}
}

function startOnce(extraArgs: string[]): Promise<LocalServer> {
	const child: ChildProcess = spawn(process.execPath, ["scripts/start.mjs", "--port", "0", ...extraArgs], {
		cwd: ROOT,
		env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
		stdio: ["ignore", "pipe", "pipe"],
	});
	let output = "";
	const exited = new Promise<void>((done) => child.once("exit", () => done()));
	return new Promise((resolveServer, reject) => {
		const onData = (chunk: Buffer) => {
			output += chunk.toString();
			const found = /edge-guard listening on (http:\/\/[^\s]+)/.exec(output);
			if (found?.[1]) {
				resolveServer({
					url: found[1],
					output: () => output,
					stop: async () => {
						if (child.exitCode === null) child.kill("SIGTERM");
						await exited;
					},
				});
			}
		};
		child.stdout?.on("data", onData);
		child.stderr?.on("data", onData);
		child.once("exit", (code) =>
			reject(new StartFailed(`the local server exited (${code}) before listening:\n${output}`, code === 1 && output.includes("edge-guard could not start"))),
		);
	});
}
