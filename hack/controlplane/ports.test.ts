import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { expect } from 'chai';
import { freePorts, listensOn } from './ports.js';

describe('control plane ports', function () {
  it('hands out distinct ports that can be bound', async function () {
    const ports = await freePorts(3);
    expect(new Set(ports).size).to.equal(3);
    const server = net.createServer();
    try {
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(ports[0], '127.0.0.1', resolve));
    } finally {
      server.close();
    }
  });

  it('tells the process holding a listener from one that does not', async function () {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await once(other, 'spawn');
      const port = (server.address() as net.AddressInfo).port;
      expect(listensOn(process.pid, port)).to.equal(true);
      expect(listensOn(other.pid ?? 0, port)).to.equal(false);
      server.close();
      await once(server, 'close');
      expect(listensOn(process.pid, port)).to.equal(false);
    } finally {
      other.kill('SIGKILL');
      server.close();
    }
  });

  // kube-apiserver of the local cluster listens on every address (nodes reach it on the underlay).
  for (const host of ['0.0.0.0', '::']) {
    it(`counts a listener on ${host} as reaching 127.0.0.1`, async function () {
      const server = net.createServer();
      await new Promise<void>((resolve) => server.listen(0, host, resolve));
      try {
        expect(listensOn(process.pid, (server.address() as net.AddressInfo).port)).to.equal(true);
      } finally {
        server.close();
      }
    });
  }
});
