import type { Env } from "./env";
import { routerForEnv } from "./pipeline/router-for-env";

export type { Env } from "./env";
export { UsageObject } from "./limits/usage-object/usage-object";

/** The edge-guard Worker. */
export default {
	fetch(request, env, ctx) {
		return routerForEnv(env).fetch(request, env, ctx);
	},
} satisfies ExportedHandler<Env>;
