import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { EndpointStateStore, ENDPOINT_STATE_VERSION } from './state-store.js';
import { endpointRecord } from './testing.js';

describe('endpoint state store', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ep-state-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('saves one file per endpoint and restores them as saved', async () => {
    const store = new EndpointStateStore(path.join(dir, 'endpoints'));
    await store.save(endpointRecord(1));
    await store.save(endpointRecord(2));
    await store.save(endpointRecord(1, { identity: 4242 }));
    expect((await readdir(store.dir)).sort()).to.deep.equal(['endpoint-00001.json', 'endpoint-00002.json']);
    const { endpoints, problems } = await new EndpointStateStore(store.dir).restore();
    expect(problems).to.deep.equal([]);
    expect(endpoints).to.deep.equal([endpointRecord(1, { identity: 4242 }), endpointRecord(2)]);
  });

  it('removes a file, and a missing one without complaint', async () => {
    const store = new EndpointStateStore(dir);
    await store.save(endpointRecord(3));
    await store.remove(3);
    await store.remove(3);
    expect((await store.restore()).endpoints).to.deep.equal([]);
  });

  it('restores nothing from a directory that does not exist yet', async () => {
    expect(await new EndpointStateStore(path.join(dir, 'none')).restore()).to.deep.equal({ endpoints: [], problems: [] });
  });

  it('reports and skips corrupt files, deletes interrupted temp files, keeps the good ones', async () => {
    const store = new EndpointStateStore(dir);
    await store.save(endpointRecord(1));
    const bad = (name: string, body: unknown): Promise<void> => writeFile(path.join(dir, name), typeof body === 'string' ? body : JSON.stringify(body));
    await bad('endpoint-00002.json', '{"version":1,"endpoint":');
    await bad('endpoint-00003.json', { version: ENDPOINT_STATE_VERSION, endpoint: endpointRecord(3, { ipv4: '10.0.1.300' }) });
    await bad('endpoint-00004.json', { version: 99, endpoint: endpointRecord(4) });
    await bad('endpoint-00005.json', { version: ENDPOINT_STATE_VERSION, endpoint: endpointRecord(6) });
    await bad('endpoint-00007.json', { version: ENDPOINT_STATE_VERSION, endpoint: { ...endpointRecord(7), ifindex: undefined } });
    await bad('.endpoint-00001.json.abc.tmp', 'half');
    await bad('README', 'not an endpoint');
    const { endpoints, problems } = await store.restore();
    expect(endpoints.map((e) => e.id)).to.deep.equal([1]);
    const reasons = Object.fromEntries(problems.map((p) => [path.basename(p.file), p.reason]));
    expect(reasons['endpoint-00002.json']).to.match(/^not JSON/);
    expect(reasons['endpoint-00003.json']).to.match(/^endpoint\.ipv4: "10\.0\.1\.300": not a dotted-quad/);
    expect(reasons['endpoint-00004.json']).to.equal('version: 99 is not 1');
    expect(reasons['endpoint-00005.json']).to.equal("endpoint.id: 6 does not match the file name's 5");
    expect(reasons['endpoint-00007.json']).to.equal('endpoint.ifindex: is required');
    expect(problems).to.have.length(5);
    const left = await readdir(dir);
    expect(left).to.not.include('.endpoint-00001.json.abc.tmp');
    expect(left, 'corrupt files stay for inspection').to.include('endpoint-00002.json');
  });

  it('cleans up its temp file and names the target when the rename fails', async () => {
    const store = new EndpointStateStore(dir);
    const target = path.join(dir, 'endpoint-00009.json');
    await mkdir(target);
    await writeFile(path.join(target, 'x'), 'x');
    let failed: Error | undefined;
    await store.save(endpointRecord(9)).catch((err: Error) => (failed = err));
    expect(failed?.message).to.include(`endpoint 9: save state to ${target}`);
    expect(await readdir(dir)).to.deep.equal(['endpoint-00009.json']);
  });
});
