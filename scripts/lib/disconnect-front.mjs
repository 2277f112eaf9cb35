// The local stack's listening socket: a plain TCP pass-through to workerd's own socket.
//
// Why: workerd treats a client's FIN as an HTTP/1.1 half-close, so a client that leaves while the
// guard waits on its origin is never seen as gone and `request.signal` never aborts (measured with
// workerd 1.20260426: a FIN left the handler waiting, a reset aborted it at once). Cloudflare's
// edge does abort on a client's close; the guard frees its in-flight slot on that abort. This
// front makes the local stack behave the same: the client's close (FIN or reset) resets the
// connection to workerd. Bytes pass through untouched, keep-alive and `Expect` included.
import net from "node:net";

/**
 * Listens on `host:port` and pipes each connection to `target`.
 * @param {{ host: string, port: number, target: { host: string, port: number } }} options
 * @returns {Promise<{ port: number, close: () => Promise<void> }>}
 */
export function startDisconnectFront({ host, port, target }) {
	/** @type {Set<net.Socket>} */
	const open = new Set();
	const server = net.createServer({ allowHalfOpen: true }, function passThrough(client) {
		const upstream = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
		open.add(client);
		open.add(upstream);
		client.setNoDelay(true);
		upstream.setNoDelay(true);
		client.pipe(upstream, { end: false });
		upstream.pipe(client);
		// The client is done with this connection: whatever workerd still runs for it is for nobody.
		const clientLeft = () => {
			if (!upstream.destroyed) upstream.resetAndDestroy();
		};
		client.on("end", clientLeft);
		client.on("error", clientLeft);
		client.on("close", () => {
			clientLeft();
			open.delete(client);
		});
		upstream.on("error", () => client.destroy());
		upstream.on("close", () => {
			if (!client.destroyed) client.end();
			open.delete(upstream);
		});
	});
	return new Promise((resolveFront, reject) => {
		server.once("error", reject);
		server.listen(port, host, () => {
			const address = server.address();
			resolveFront({
				port: typeof address === "object" && address !== null ? address.port : port,
				close: () =>
					new Promise((done) => {
						for (const socket of open) socket.destroy();
						server.close(() => done());
					}),
			});
		});
	});
}
