import { checkRequestHeaders } from "../keys/request-checks";
import type { Exchange } from "./exchange";

/** Stage 3: the headers the route requires (`anthropic-version`, the body's `content-type`): `400`. */
export function checkHeaders(exchange: Exchange): void {
	checkRequestHeaders(exchange.request, exchange.route, exchange.state);
}
