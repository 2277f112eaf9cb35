import type { GuardConfig } from "../config/guard-config";
import type { Route } from "../config/route-table";
import type { Env } from "../env";
import type { RequestState } from "../lib/request-state";
import type { OriginTarget } from "../proxy/origin";
import type { GuardRequest } from "./request-state";

/** One request on its way through a route's stages: what every stage may read. */
export interface Exchange {
	readonly request: GuardRequest;
	readonly env: Env;
	readonly ctx: ExecutionContext;
	readonly route: Route;
	readonly config: GuardConfig;
	readonly state: RequestState;
	readonly incoming: URL;
	readonly target: OriginTarget;
}
