import { spawn } from "node:child_process";

/** How a Node script run by `runNode` ended, and everything it printed. */
export interface NodeRun {
	/** The exit code, or null if a signal ended it (`signal` says which). */
	status: number | null;
	signal: NodeJS.Signals | null;
	stdout: string;
	stderr: string;
}

export interface RunNodeOptions {
	cwd: string;
	env: NodeJS.ProcessEnv;
	/** Ends the child with SIGKILL after this long (default 50 s, under the e2e tests' 60 s). */
	timeoutMs?: number;
}

/**
 * Runs `node <args>` without blocking this process's event loop, unlike `spawnSync`: while the child
 * runs, the test's kept-alive connections and the local server's output pipes are still served, so a
 * connection the server closes meanwhile is noticed instead of being reused dead by the next fetch.
 */
export function runNode(args: string[], { cwd, env, timeoutMs = 50_000 }: RunNodeOptions): Promise<NodeRun> {
	return new Promise((resolveRun, reject) => {
		const child = spawn(process.execPath, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
		let stdout = "";
		let stderr = "";
		child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
			stdout += chunk;
		});
		child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
			stderr += chunk;
		});
		const timer = setTimeout(() => {
			stderr += `\n[runNode: killed after ${timeoutMs} ms]`;
			child.kill("SIGKILL");
		}, timeoutMs);
		child.once("error", (error) => {
			clearTimeout(timer);
			reject(error);
		});
		// "close", not "exit": it comes once both pipes have ended, so nothing printed is missed.
		child.once("close", (status, signal) => {
			clearTimeout(timer);
			resolveRun({ status, signal, stdout, stderr });
		});
	});
}
