import { expect } from 'chai';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { drainDeleteQueue, enqueueDelete, type DeleteRequest } from './delete-queue.js';

function recordingLog() {
  const lines: { level: string; message: string }[] = [];
  return { lines, info: (message: string) => lines.push({ level: 'info', message }), warn: (message: string) => lines.push({ level: 'warn', message }) };
}

describe('cni/delete-queue', () => {
  let dir: string;
  beforeEach(async () => {
    dir = path.join(await mkdtemp(path.join(tmpdir(), 'cilium-cni-queue-')), 'deleteQueue');
  });
  afterEach(async () => {
    await rm(path.dirname(dir), { recursive: true, force: true });
  });

  it('drains what DEL queued: each request deleted once, its file removed after success', async () => {
    const a: DeleteRequest = { 'container-id': 'aaa', ifname: 'eth0', netns: '/var/run/netns/a' };
    const b: DeleteRequest = { 'container-id': 'bbb', ifname: 'eth0', netns: '' };
    await enqueueDelete(dir, a);
    await enqueueDelete(dir, b);
    await enqueueDelete(dir, a);
    expect(await readdir(dir)).to.deep.equal(['aaa-eth0.delete', 'bbb-eth0.delete']);
    const seen: DeleteRequest[] = [];
    const report = await drainDeleteQueue(dir, (req) => (seen.push(req), Promise.resolve()), recordingLog());
    expect(report).to.deep.equal({ deleted: 2, failed: 0 });
    expect(seen).to.deep.equal([a, b]);
    expect(await readdir(dir)).to.deep.equal([]);
  });

  it('keeps a request whose deletion failed for the next start, drops one that is not a request', async () => {
    await enqueueDelete(dir, { 'container-id': 'keep', ifname: 'eth0', netns: '' });
    await writeFile(path.join(dir, 'junk-eth0.delete'), '{"ifname": "eth0"}');
    const log = recordingLog();
    const report = await drainDeleteQueue(dir, () => Promise.reject(new Error('agent busy')), log);
    expect(report).to.deep.equal({ deleted: 0, failed: 2 });
    expect(await readdir(dir)).to.deep.equal(['keep-eth0.delete']);
    expect(log.lines.map((l) => l.level)).to.deep.equal(['warn', 'warn']);
  });

  it('treats a missing queue directory as empty', async () => {
    expect(await drainDeleteQueue(dir, () => Promise.reject(new Error('not called')), recordingLog())).to.deep.equal({ deleted: 0, failed: 0 });
  });
});
