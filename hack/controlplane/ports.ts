// Free loopback TCP ports, picked by the kernel, and who listens on them.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';

function listenOnFreePort(): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (err) => reject(new Error(`free port: cannot listen on 127.0.0.1:0: ${err.message}`)));
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

function portOf(server: net.Server): number {
  const address = server.address();
  if (address === null || typeof address === 'string') {
    throw new Error('free port: listener on 127.0.0.1:0 reported no TCP address');
  }
  return address.port;
}

// All listeners stay open until every port is known, so the kernel cannot hand out one port twice.
export async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let i = 0; i < count; i++) servers.push(await listenOnFreePort());
    return servers.map(portOf);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

// Socket inodes of the TCP listeners that 127.0.0.1:port reaches (bound there, to 0.0.0.0 or to
// the dual-stack ::), from /proc/net/tcp{,6} (address and port in hex, the address in host byte
// order; state 0A is LISTEN).
function listenerInodes(port: number): Set<string> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const locals = ['0100007F', '00000000', '0'.repeat(32)].map((address) => `${address}:${hexPort}`);
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (locals.includes(fields[1] ?? '') && fields[3] === '0A' && fields[9] !== undefined) inodes.add(fields[9]);
    }
  }
  return inodes;
}

// Whether pid holds the listener 127.0.0.1:port reaches: a health probe that answers may come from
// another process that took a port between freePorts() and our server's bind.
export function listensOn(pid: number, port: number): boolean {
  const inodes = listenerInodes(port);
  if (inodes.size === 0) return false;
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  return fds.some((fd) => {
    try {
      return inodes.has(/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1] ?? '');
    } catch {
      return false;
    }
  });
}
