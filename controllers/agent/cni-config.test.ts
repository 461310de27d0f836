// write-cni-conf-when-ready on a real filesystem: the upstream shape at 1.0.0, written whole by a
// rename (a watcher of the directory never reads a partial file), an identical file left alone, an
// unparsable or different one replaced.
import { watch } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { ciliumConflist, writeCniConfig } from './cni-config.js';

describe('writeCniConfig', () => {
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'cni-config-'));
    file = path.join(dir, 'net.d', '05-cilium.conflist');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes upstream\'s default conflist at CNI 1.0.0, creating the directory, mode 0644, no temp left', async () => {
    expect(await writeCniConfig(file)).to.equal('written');
    expect(JSON.parse(await readFile(file, 'utf8'))).to.deep.equal({
      cniVersion: '1.0.0',
      name: 'cilium',
      plugins: [{ type: 'cilium-cni', 'enable-debug': false, 'log-file': '/var/run/cilium/cilium-cni.log' }],
    });
    expect((await stat(file)).mode & 0o777).to.equal(0o644);
    expect(await readdir(path.dirname(file))).to.deep.equal(['05-cilium.conflist']);
  });

  it('leaves an identical file alone, however it is formatted', async () => {
    await mkdir(path.dirname(file));
    await writeFile(file, JSON.stringify(ciliumConflist()));
    const before = await stat(file);
    expect(await writeCniConfig(file)).to.equal('unchanged');
    const after = await stat(file);
    expect([after.ino, after.mtimeMs]).to.deep.equal([before.ino, before.mtimeMs]);
    expect(await readFile(file, 'utf8')).to.equal(JSON.stringify(ciliumConflist()));
  });

  it('replaces an unparsable file and one that says something else', async () => {
    await mkdir(path.dirname(file));
    await writeFile(file, '{"cniVersion": "1.0.0", "name": "cil');
    expect(await writeCniConfig(file)).to.equal('written');
    expect(JSON.parse(await readFile(file, 'utf8'))).to.deep.equal(ciliumConflist());

    expect(await writeCniConfig(file, ciliumConflist({ socketPath: '/var/run/cilium/cilium.sock' })), 'upstream\'s socket is the plugin\'s default').to.equal('unchanged');
    expect(await writeCniConfig(file, ciliumConflist({ socketPath: '/run/node-a/cilium.sock' }))).to.equal('written');
    expect((JSON.parse(await readFile(file, 'utf8')) as { plugins: object[] }).plugins[0]).to.include({ 'socket-path': '/run/node-a/cilium.sock' });

    await writeFile(file, JSON.stringify({ ...ciliumConflist(), cniVersion: '0.3.1' }));
    expect(await writeCniConfig(file, ciliumConflist({ logFile: '/tmp/x.log', debug: true }))).to.equal('written');
    expect((JSON.parse(await readFile(file, 'utf8')) as { plugins: unknown }).plugins).to.deep.equal([{ type: 'cilium-cni', 'enable-debug': true, 'log-file': '/tmp/x.log' }]);
  });

  it('never shows a watcher of the directory a partial configuration file', async () => {
    await mkdir(path.dirname(file));
    const seen: string[] = [];
    const partial: string[] = [];
    // What a runtime does: on every change, read each file with a CNI config suffix.
    const watcher = watch(path.dirname(file), () => {
      for (const name of ['05-cilium.conflist']) {
        void readFile(path.join(path.dirname(file), name), 'utf8').then(
          (text) => {
            seen.push(text);
            try {
              JSON.parse(text);
            } catch {
              partial.push(text);
            }
          },
          () => undefined,
        );
      }
    });
    try {
      for (let i = 0; i < 50; i++) await writeCniConfig(file, ciliumConflist({ logFile: `/var/run/cilium/cni-${i}-${'x'.repeat(4096)}.log` }));
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      watcher.close();
    }
    expect(seen.length, 'the watcher read the file').to.be.greaterThan(0);
    expect(partial).to.deep.equal([]);
    expect(await readdir(path.dirname(file))).to.deep.equal(['05-cilium.conflist']);
  });

  it('names the option and the path when it cannot read what is there', async () => {
    await mkdir(file, { recursive: true });
    let error: Error | undefined;
    await writeCniConfig(file).catch((err: Error) => (error = err));
    expect(error?.message).to.match(/^write-cni-conf-when-ready .*05-cilium\.conflist: reading the existing file: EISDIR/);
  });
});
