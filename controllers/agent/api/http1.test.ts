// The agent API's HTTP/1.1 client against a raw socket server that answers with scripted bytes,
// written in pieces as small as one byte: every framing (Content-Length, chunked with extensions
// and trailers, until close, none), connection reuse, and the failures.
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { rejection } from '../../../test/support/rejection.js';
import { Http1Pool, type Http1Request, type Http1Response } from './http1.js';

async function text(res: Http1Response): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res.body) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function request(target: string, extra: Partial<Http1Request> = {}): Http1Request {
  return { method: 'GET', target, headers: {}, timeoutMs: 2_000, timeoutError: () => new Error(`${target}: no answer`), ...extra };
}

/** Writes `bytes` in pieces of `piece` bytes, one per event loop turn. */
async function dribble(socket: Socket, bytes: string, piece: number): Promise<void> {
  for (let i = 0; i < bytes.length; i += piece) {
    socket.write(bytes.slice(i, i + piece));
    await sleep(0);
  }
}

describe('HTTP/1.1 client over a unix socket', () => {
  let dir: string;
  let server: Server;
  let pool: Http1Pool;
  /** The answer for each request target; `piece` splits it. */
  const script = new Map<string, { reply: string; piece?: number; close?: boolean }>();
  let connections = 0;
  const requests: string[] = [];

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'http1-'));
    server = createServer((socket) => {
      connections++;
      let pending = '';
      socket.on('data', (d: Buffer) => {
        pending += d.toString('latin1');
        for (let end; (end = pending.indexOf('\r\n\r\n')) >= 0; ) {
          const head = pending.slice(0, end);
          const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
          if (pending.length < end + 4 + length) return;
          requests.push(pending.slice(0, end + 4 + length));
          pending = pending.slice(end + 4 + length);
          const target = head.split(' ')[1] ?? '';
          const step = script.get(target);
          if (step === undefined) continue;
          void dribble(socket, step.reply, step.piece ?? step.reply.length).then(() => {
            if (step.close) socket.end();
          });
        }
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(path.join(dir, 's.sock'), resolve));
  });
  beforeEach(() => {
    pool = new Http1Pool(path.join(dir, 's.sock'));
    connections = 0;
    requests.length = 0;
  });
  afterEach(() => pool.close());
  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a Content-Length body split into single bytes, and reuses the connection', async () => {
    script.set('/a', { reply: 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"a":"b c"}', piece: 1 });
    const res = await pool.exchange(request('/a'));
    expect(res.status).to.equal(200);
    expect(res.headers['content-type']).to.equal('application/json');
    expect(await text(res)).to.equal('{"a":"b c"}');
    expect(await text(await pool.exchange(request('/a')))).to.equal('{"a":"b c"}');
    expect(connections, 'one kept-alive connection').to.equal(1);
  });

  it('de-chunks a chunked body with extensions and trailers, split at every byte', async () => {
    script.set('/c', { reply: 'HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\nA\r\npedia in\r\n\r\n0\r\nX-Trailer: t\r\n\r\n', piece: 1 });
    const res = await pool.exchange(request('/c'));
    expect(res.status).to.equal(201);
    expect(await text(res)).to.equal('Wikipedia in\r\n');
    expect(await text(await pool.exchange(request('/c')))).to.equal('Wikipedia in\r\n');
    expect(connections).to.equal(1);
  });

  it('reads a body without length until the server closes, and then does not reuse the connection', async () => {
    script.set('/close', { reply: 'HTTP/1.1 200 OK\r\n\r\nall of it', piece: 3, close: true });
    expect(await text(await pool.exchange(request('/close')))).to.equal('all of it');
    expect(await text(await pool.exchange(request('/close')))).to.equal('all of it');
    expect(connections).to.equal(2);
  });

  it('reads no body for 204 and HEAD, and honours Connection: close', async () => {
    script.set('/none', { reply: 'HTTP/1.1 204 No Content\r\n\r\n' });
    script.set('/head', { reply: 'HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n' });
    script.set('/bye', { reply: 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok' });
    expect(await text(await pool.exchange(request('/none')))).to.equal('');
    expect(await text(await pool.exchange(request('/head', { method: 'HEAD' })))).to.equal('');
    expect(connections, '204 and HEAD keep the connection').to.equal(1);
    expect(await text(await pool.exchange(request('/bye')))).to.equal('ok');
    expect(await text(await pool.exchange(request('/none')))).to.equal('');
    expect(connections).to.equal(2);
  });

  it('sends the body with its length and the headers given', async () => {
    script.set('/put', { reply: 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n' });
    await text(await pool.exchange(request('/put', { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: '{"ü":1}' })));
    expect(requests[0]).to.equal('PUT /put HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{"ü":1}'.replace('ü', '\u00c3\u00bc'));
  });

  it('fails a body the server cuts short, and a malformed answer', async () => {
    script.set('/short', { reply: 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc', close: true });
    script.set('/bad', { reply: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', close: true });
    script.set('/garbage', { reply: 'SMTP ready\r\n\r\n', close: true });
    expect((await rejection(text(await pool.exchange(request('/short'))))).message).to.equal('GET /short: connection closed in the middle of the response body');
    expect((await rejection(text(await pool.exchange(request('/bad'))))).message).to.equal('GET /bad: bad response: bad chunk size "zz"');
    expect((await rejection(pool.exchange(request('/garbage')))).message).to.equal('GET /garbage: bad response: bad status line "SMTP ready"');
  });

  it('gives up on a silent server after the timeout, with the caller\'s error', async () => {
    const err = await rejection(pool.exchange(request('/silent', { timeoutMs: 50 })));
    expect(err.message).to.equal('/silent: no answer');
  });

  it('refuses a target or header that could smuggle a second request, before connecting', async () => {
    expect((await rejection(pool.exchange(request('/x HTTP/1.1\r\nHost: y\r\n\r\nGET /y')))).message).to.match(/request path holds spaces or control characters/);
    expect((await rejection(pool.exchange(request('/x', { headers: { a: 'b\r\nc: d' } })))).message).to.match(/invalid header "a"/);
    expect(connections).to.equal(0);
  });
});
