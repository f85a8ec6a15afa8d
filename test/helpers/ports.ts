// Addresses for the few listeners that cannot bind port 0 and report back.
//
// The service binds port 0 itself (PORT=0, or a listener handed to
// startService), so no other process can take its port. PostgreSQL cannot
// listen on port 0, and a test of "nothing listens here yet" needs a port that
// stays unbound for a while. Freeing a port on 127.0.0.1 and using it later
// races with every other process of the run: the kernel hands the same
// ephemeral ports to other listeners and to outgoing connections from
// 127.0.0.1. So such a port is taken on an address of its own: Linux answers
// on all of 127.0.0.0/8, nothing else in the run listens on a random one of
// those addresses, and connections to 127.0.0.1 never use it as their source.
import { randomInt } from 'node:crypto';
import net from 'node:net';

/** A random loopback address other than 127.0.0.x, for one test's own listeners. */
export function privateLoopbackAddress(): string {
  return `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;
}

/** A port nothing listens on at `host` (a private loopback address): bind it later, or connect to be refused. */
export async function unusedPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** A TCP listener on 127.0.0.1 at a port the kernel chose, already bound: hand it to startService. */
export async function boundListener(host = '127.0.0.1'): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  return { server, port: (server.address() as net.AddressInfo).port };
}
