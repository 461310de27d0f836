import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { AgentApiError, AgentClient, AgentUnreachableError, parseHostFlag } from './client.js';
import { rejection } from '../../../test/support/rejection.js';

describe('agent API client', () => {
  let dir: string;
  let server: http.Server;
  let client: AgentClient;
  let quietStream: http.ServerResponse | undefined;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'agent-client-'));
    server = http.createServer((req, res) => {
      if (req.url === '/v1/echo?owner=ns%2Fpod') {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => res.writeHead(201, { 'Content-Type': 'application/json' }).end(JSON.stringify({ method: req.method, body: JSON.parse(body) as unknown })));
      } else if (req.url === '/v1/stream') {
        res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
        res.write('{"n":1}\n{"n"');
        setTimeout(() => res.end(':2}\n'), 10);
      } else if (req.url === '/v1/quiet-stream') {
        // Headers now, the only line when the test says so.
        res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
        res.flushHeaders();
        quietStream = res;
      } else {
        res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify(`no such path ${req.url}`));
      }
    });
    await new Promise<void>((resolve) => server.listen(path.join(dir, 'api.sock'), resolve));
    client = new AgentClient({ socketPath: path.join(dir, 'api.sock') });
  });

  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it('sends JSON with the query and parses the answer', async () => {
    const out = await client.request<{ method: string; body: unknown }>('PUT', '/echo', { body: { a: 1 }, query: { owner: 'ns/pod', skip: undefined } });
    expect(out).to.deep.equal({ method: 'PUT', body: { a: 1 } });
  });

  it("turns a non-2xx answer into an error carrying the server's message", async () => {
    const err = await rejection(client.request('GET', '/nope'));
    expect(err).to.be.instanceOf(AgentApiError);
    expect((err as AgentApiError).status).to.equal(404);
    expect(err.message).to.equal('GET /v1/nope: HTTP 404: no such path /v1/nope');
  });

  it('reads a line-delimited stream across chunk boundaries', async () => {
    const got: unknown[] = [];
    for await (const x of await client.stream('/stream')) got.push(x);
    expect(got).to.deep.equal([{ n: 1 }, { n: 2 }]);
  });

  it('resolves a stream once the agent answered, before its first line, and refuses a 4xx', async () => {
    const lines = await client.stream<{ n: number }>('/quiet-stream');
    expect(quietStream, 'the server answered the stream').to.not.equal(undefined);
    quietStream?.end('{"n":3}\n');
    const got: unknown[] = [];
    for await (const x of lines) got.push(x);
    expect(got).to.deep.equal([{ n: 3 }]);
    const err = await rejection(client.stream('/nope'));
    expect(err).to.be.instanceOf(AgentApiError);
    expect((err as AgentApiError).status).to.equal(404);
  });

  it('says the agent is unreachable when no socket exists', async () => {
    const err = await rejection(new AgentClient({ socketPath: path.join(dir, 'missing.sock') }).request('GET', '/healthz'));
    expect(err).to.be.instanceOf(AgentUnreachableError);
    expect(err.message).to.contain('missing.sock');
  });

  it('parses -H values and refuses non-unix hosts', () => {
    expect(parseHostFlag('unix:///var/run/cilium/cilium.sock')).to.equal('/var/run/cilium/cilium.sock');
    expect(parseHostFlag('unix:/x.sock')).to.equal('/x.sock');
    expect(parseHostFlag('/x.sock')).to.equal('/x.sock');
    expect(() => parseHostFlag('tcp://127.0.0.1:1')).to.throw(/-H\/--host "tcp:\/\/127.0.0.1:1"/);
  });
});
