import { ADMIN_PREFIX, type GuardConfig } from "../config/guard-config";
import type { Env } from "../env";
import { GuardError } from "../errors/guard-error";
import type { RequestState } from "../lib/request-state";
import type { Overload } from "../overload/admission";
import type { AdminContext } from "./admin-context";
import { answerApi } from "./api/api-routes";
import { requireAdmin } from "./auth/admin-token";
import { serveConsoleFile } from "./page/console-page";

const API_PREFIX = `${ADMIN_PREFIX}/api`;

/** The router as the console needs it: one handler for a path pattern and every method. */
interface Routes {
	all(path: string, handler: (request: Request & { guard: RequestState }, env: Env) => Promise<Response>): unknown;
}

/**
 * Registers the operator console on `router`, before anything else sees the request: `/_guard/`
 * (the page, Workers Static Assets) and `/_guard/api/` (the admin API, JSON, bearer
 * `ADMIN_TOKEN`). Never shed, never charged, never forwarded; logged like every request, without
 * the token. Without `ADMIN_TOKEN` the console is off and the whole prefix answers `404`.
 */
export function registerAdmin(router: Routes, config: GuardConfig, overload: Overload): void {
	router.all(`${ADMIN_PREFIX}/*`, async function handleAdmin(request, env) {
		const state = request.guard;
		state.route = "admin";
		const token = env.ADMIN_TOKEN;
		if (typeof token !== "string" || token === "") {
			state.decisions.admin = { enabled: false };
			throw new GuardError(404, "The requested resource could not be found.");
		}
		const url = new URL(request.url);
		const path = url.pathname;
		if (path === API_PREFIX || path.startsWith(`${API_PREFIX}/`)) {
			await requireAdmin(request.headers, token, state);
			const context: AdminContext = { request, url, env, config, overload, state };
			return answerApi(context, path.slice(API_PREFIX.length));
		}
		state.route = "admin.page";
		if (path === ADMIN_PREFIX) return new Response(null, { status: 308, headers: { location: `${ADMIN_PREFIX}/` } });
		return serveConsoleFile(request, url, env.ASSETS);
	});
}
