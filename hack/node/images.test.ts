// The local cluster's images as OCI archives: a layout containerd imports (digests that match
// their blobs, the image name annotation, a config with PATH and a command), the test image's
// applets, a pause that ignores other signals but exits on SIGTERM, and a cache that builds once.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, readlink, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { buildImages, PAUSE_IMAGE, TESTBOX_IMAGE, type ImageArchive } from './images.js';

const run = promisify(execFile);

interface Descriptor {
  digest: string;
  size: number;
  mediaType: string;
  annotations?: Record<string, string>;
}

describe('hack/node/images', function () {
  this.timeout(60_000);
  let cache: string;
  let work: string;
  let archives: ImageArchive[];

  before(async function () {
    cache = await mkdtemp(path.join(os.tmpdir(), 'cilium-ts-images-cache-'));
    work = await mkdtemp(path.join(os.tmpdir(), 'cilium-ts-images-work-'));
    archives = await buildImages(cache);
  });

  after(async function () {
    await rm(cache, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  /** Unpacks an archive and its one layer; returns the layout dir, the rootfs dir and the config. */
  async function unpack(image: ImageArchive): Promise<{ rootfs: string; config: { config: { Env: string[]; Cmd: string[]; Entrypoint: string[] | null } } }> {
    const layout = path.join(work, path.basename(image.archive, '.tar'));
    const rootfs = `${layout}-rootfs`;
    await run('mkdir', ['-p', layout, rootfs]);
    await run('tar', ['-xf', image.archive, '-C', layout]);
    const blob = async (d: Descriptor): Promise<Buffer> => {
      const data = await readFile(path.join(layout, 'blobs', 'sha256', d.digest.replace('sha256:', '')));
      expect(`sha256:${createHash('sha256').update(data).digest('hex')}`, `${d.mediaType} digest`).to.equal(d.digest);
      expect(data.length, `${d.mediaType} size`).to.equal(d.size);
      return data;
    };
    expect(JSON.parse(await readFile(path.join(layout, 'oci-layout'), 'utf8'))).to.deep.equal({ imageLayoutVersion: '1.0.0' });
    const index = JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
    expect(index.manifests).to.have.length(1);
    const [desc] = index.manifests as [Descriptor];
    expect(desc.annotations?.['io.containerd.image.name']).to.equal(image.name);
    const manifest = JSON.parse((await blob(desc)).toString()) as { config: Descriptor; layers: Descriptor[] };
    expect(manifest.layers.map((l) => l.mediaType)).to.deep.equal(['application/vnd.oci.image.layer.v1.tar']);
    const config = JSON.parse((await blob(manifest.config)).toString()) as { config: { Env: string[]; Cmd: string[]; Entrypoint: string[] | null }; rootfs: { diff_ids: string[] } };
    expect(config.rootfs.diff_ids).to.deep.equal(manifest.layers.map((l) => l.digest));
    await blob(manifest.layers[0] as Descriptor);
    await run('tar', ['-xf', path.join(layout, 'blobs', 'sha256', (manifest.layers[0] as Descriptor).digest.replace('sha256:', '')), '-C', rootfs]);
    return { rootfs, config };
  }

  it('builds the pause image and the test image, in that order, as OCI archives', async () => {
    expect(archives.map((a) => a.name)).to.deep.equal([PAUSE_IMAGE, TESTBOX_IMAGE]);
    const testbox = await unpack(archives[1] as ImageArchive);
    expect(testbox.config.config.Cmd).to.deep.equal(['sh']);
    expect(testbox.config.config.Env.some((e) => e.startsWith('PATH=') && e.includes('/bin'))).to.equal(true);
    for (const applet of ['sh', 'httpd', 'wget', 'nc', 'ping', 'sleep', 'timeout', 'cat', 'ls']) {
      expect(await readlink(path.join(testbox.rootfs, 'bin', applet)), applet).to.equal('busybox');
    }
    const { stdout } = await run(path.join(testbox.rootfs, 'bin', 'busybox'), ['echo', 'from the image']);
    expect(stdout).to.equal('from the image\n');
    expect((await stat(path.join(testbox.rootfs, 'tmp'))).mode & 0o7777).to.equal(0o1777);
  });

  it('has a pause that stays through other signals and exits 0 on SIGTERM', async () => {
    const pause = await unpack(archives[0] as ImageArchive);
    expect(pause.config.config.Entrypoint).to.deep.equal(['/pause']);
    const child = spawn(path.join(pause.rootfs, 'pause'), { stdio: 'ignore' });
    const exited = once(child, 'exit');
    try {
      await sleep(100);
      for (const sig of ['SIGHUP', 'SIGUSR1', 'SIGQUIT'] as const) child.kill(sig);
      await sleep(100);
      expect(child.exitCode, 'still running after HUP, USR1, QUIT').to.equal(null);
      child.kill('SIGTERM');
      const [code, signal] = (await exited) as [number | null, string | null];
      expect({ code, signal }).to.deep.equal({ code: 0, signal: null });
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('builds once per content: a second call returns the cached archives untouched', async () => {
    const before = await Promise.all(archives.map((a) => stat(a.archive)));
    const again = await buildImages(cache);
    expect(again).to.deep.equal(archives);
    const after = await Promise.all(again.map((a) => stat(a.archive)));
    expect(after.map((s) => s.mtimeMs)).to.deep.equal(before.map((s) => s.mtimeMs));
  });
});
