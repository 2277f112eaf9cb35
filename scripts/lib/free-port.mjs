// A free loopback port, for a server started by another process (workerd's inspector, a gateway).
import { createServer } from "node:net";

/**
 * A loopback port that was free a moment ago (the OS picks it; another process could still take
 * it before the caller binds it).
 * @returns {Promise<number>}
 */
export function freePort() {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.on("error", reject);
		server.listen(0, "127.0.0.1", () => {
			const address = server.address();
			server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
		});
	});
}
