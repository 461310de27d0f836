import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ensureBpffs, isBpffs } from './bpffs.js';
import { BpfError } from './errors.js';
import { BpfMap } from './map.js';
import { makeTempDir, removeDir } from './testdata/fixtures.js';

const run = promisify(execFile);

describe('bpffs', function () {
  let dir: string | undefined;
  let mountPoint: string | undefined;
  afterEach(async function () {
    try {
      if (mountPoint !== undefined) await run('umount', [mountPoint]);
    } finally {
      mountPoint = undefined;
      removeDir(dir);
    }
  });

  it('mounts a bpffs instance where there is none, once, and pins work on it', function () {
    dir = makeTempDir();
    const target = path.join(dir, 'bpffs');
    expect(isBpffs(target)).to.equal(false);
    expect(ensureBpffs(target)).to.equal(true);
    mountPoint = target;
    expect(isBpffs(target)).to.equal(true);
    expect(ensureBpffs(target)).to.equal(false);
    const m = BpfMap.create({ type: 'array', name: 'lbt_fs', keySize: 4, valueSize: 4, maxEntries: 1 });
    try {
      m.pin(path.join(target, 'pinned'));
      const again = BpfMap.openPinned(path.join(target, 'pinned'));
      expect(again.id).to.equal(m.id);
      again.close();
    } finally {
      m.close();
    }
  });

  it('names the directory it cannot mount on', function () {
    dir = makeTempDir();
    const file = path.join(dir, 'not-a-dir');
    writeFileSync(file, '');
    const target = path.join(file, 'bpffs');
    expect(() => ensureBpffs(target)).to.throw(BpfError, new RegExp(`^create bpffs mount point ${target}: Not a directory \\(errno 20\\)$`));
  });
});
