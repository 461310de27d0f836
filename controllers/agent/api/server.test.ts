import { execFileSync } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { newLogger } from '../../runtime/log.js';
import { rejection } from '../../../test/support/rejection.js';
import { badRequest } from './errors.js';
import { Router } from './router.js';
import { ApiServer, jsonBody } from './server.js';

function get(socketPath: string, method: string, p: string, body?: string): Promise<{ status: number; allow?: string; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path: p, agent: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, allow: res.headers.allow, body: text === '' ? undefined : (JSON.parse(text) as unknown) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Resolves once something accepts connections on the socket (a stale file does not). */
async function answering(socketPath: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(socketPath, () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`nothing answers on ${socketPath}`);
}

describe('API server on a unix socket', () => {
  let dir: string;
  const log = newLogger('api-server-test', 'error');
  const router = new Router()
    .add('GET', '/ok', () => ({ status: 200, body: { fine: true } }))
    .add('PUT', '/echo', (req) => ({ status: 201, body: jsonBody(req) }))
    .add('GET', '/boom', () => {
      throw new Error('handler exploded');
    })
    .add('GET', '/refuse', () => {
      throw badRequest('field', 'is wrong');
    });

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'api-server-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function serving(socketPath: string): Promise<{ stop: () => Promise<void> }> {
    const server = new ApiServer({ socketPath, router, logger: log });
    const stopper = new AbortController();
    const done = server.run(stopper.signal);
    await answering(socketPath);
    return {
      stop: async () => {
        stopper.abort();
        await done;
      },
    };
  }

  it('creates the parent directory, serves mode 0660, answers errors as JSON strings, and removes the socket on stop', async () => {
    const sock = path.join(dir, 'run', 'cilium', 'cilium.sock');
    const s = await serving(sock);
    expect(statSync(sock).mode & 0o777).to.equal(0o660);
    expect(await get(sock, 'GET', '/v1/ok')).to.deep.include({ status: 200, body: { fine: true } });
    expect(await get(sock, 'PUT', '/v1/echo', '{"a":1}')).to.deep.include({ status: 201, body: { a: 1 } });
    expect(await get(sock, 'PUT', '/v1/echo', '{"a":')).to.deep.include({ status: 400 });
    expect((await get(sock, 'PUT', '/v1/echo', '{"a":')).body).to.match(/^request body: not valid JSON/);
    expect(await get(sock, 'GET', '/v1/refuse')).to.deep.include({ status: 400, body: 'field: is wrong' });
    expect(await get(sock, 'GET', '/v1/boom')).to.deep.include({ status: 500, body: 'handler exploded' });
    expect(await get(sock, 'GET', '/v1/nope')).to.deep.include({ status: 404, body: 'path /v1/nope not found' });
    expect(await get(sock, 'GET', '/ok')).to.deep.include({ status: 404, body: 'path /ok not found: the API is under /v1' });
    expect(await get(sock, 'POST', '/v1/ok')).to.deep.include({ status: 405, allow: 'GET' });
    expect(await get(sock, 'GET', '/v1/ok'), 'still serving after a failed handler').to.deep.include({ status: 200 });
    await s.stop();
    expect(existsSync(sock)).to.equal(false);
  });

  it('replaces a stale socket, takes over a live one (as upstream), and refuses a file that is not a socket', async () => {
    const sock = path.join(dir, 'cilium.sock');
    // A socket file whose process died without removing it.
    execFileSync('python3', ['-c', `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(sock)})`]);
    expect(statSync(sock).isSocket()).to.equal(true);
    const s = await serving(sock);
    expect((await get(sock, 'GET', '/v1/ok')).status).to.equal(200);

    // A second server takes the path over; the first one's stop leaves the second's socket alone.
    const first = statSync(sock).ino;
    const takeover = await serving(sock);
    for (let i = 0; i < 400 && statSync(sock).ino === first; i++) await new Promise((r) => setTimeout(r, 5));
    const inode = statSync(sock).ino;
    expect(inode, 'a new socket at the path').to.not.equal(first);
    await s.stop();
    expect(statSync(sock).ino).to.equal(inode);
    expect((await get(sock, 'GET', '/v1/ok')).status).to.equal(200);
    await takeover.stop();
    expect(existsSync(sock)).to.equal(false);

    const plain = path.join(dir, 'plain');
    writeFileSync(plain, 'x');
    const err = await rejection(new ApiServer({ socketPath: plain, router, logger: log }).run(new AbortController().signal));
    expect(err.message).to.match(/exists and is not a socket/);
  });

  it('closes streaming connections when it stops', async () => {
    const sock = path.join(dir, 'stream.sock');
    const streaming = new Router().add('GET', '/stream', (req) => {
      req.res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
      req.res.write('{}\n');
      return new Promise<undefined>((resolve) => req.signal.addEventListener('abort', () => resolve(undefined)));
    });
    const server = new ApiServer({ socketPath: sock, router: streaming, logger: log });
    const stopper = new AbortController();
    const done = server.run(stopper.signal);
    await answering(sock);
    const closed = new Promise<void>((resolve) => {
      const c = net.connect(sock, () => c.write('GET /v1/stream HTTP/1.1\r\nHost: x\r\n\r\n'));
      c.once('data', () => stopper.abort());
      c.on('close', () => resolve());
    });
    await closed;
    await done;
    expect(existsSync(sock)).to.equal(false);
  });
});
