import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import koffi from 'koffi';
import type { TypeObject } from 'koffi';
import { BtfMember, BtfTypeHeader, BtfVarSecinfo, fn, MapBatchOpts, MapCreateOpts, MapInfo, ObjectOpenOpts, ProgInfoPrefix, RingBufferOpts, TcHook, TcOpts, TestRunOpts } from './native.js';
import { makeTempDir, removeDir } from './testdata/fixtures.js';

const run = promisify(execFile);

// koffi struct -> the C struct it mirrors; a prefix mirror is checked for offsets only.
const MIRRORS: Array<{ type: TypeObject; cName: string; prefixOnly?: boolean }> = [
  { type: MapCreateOpts, cName: 'bpf_map_create_opts' },
  { type: MapBatchOpts, cName: 'bpf_map_batch_opts' },
  { type: ObjectOpenOpts, cName: 'bpf_object_open_opts' },
  { type: TestRunOpts, cName: 'bpf_test_run_opts' },
  { type: TcHook, cName: 'bpf_tc_hook' },
  { type: TcOpts, cName: 'bpf_tc_opts' },
  { type: RingBufferOpts, cName: 'ring_buffer_opts' },
  { type: MapInfo, cName: 'bpf_map_info' },
  { type: ProgInfoPrefix, cName: 'bpf_prog_info', prefixOnly: true },
  { type: BtfTypeHeader, cName: 'btf_type' },
  { type: BtfMember, cName: 'btf_member' },
  { type: BtfVarSecinfo, cName: 'btf_var_secinfo' },
];

// Names that stand for unnamed padding or union members in the C header.
const C_FIELD_NAMES: Record<string, string> = { size_or_type: 'size' };

function memberNames(type: TypeObject): string[] {
  return Object.keys(koffi.type(type).members ?? {}).filter((name) => !name.startsWith('reserved_'));
}

describe('native struct layouts', function () {
  let dir: string | undefined;
  after(function () {
    removeDir(dir);
  });

  it('match sizeof and offsetof of the C headers', async function () {
    dir = makeTempDir();
    const lines = MIRRORS.flatMap(({ type, cName, prefixOnly }) => [
      ...(prefixOnly ? [] : [`printf("${cName} sizeof %zu\\n", sizeof(struct ${cName}));`]),
      ...memberNames(type).map((m) => `printf("${cName} ${m} %zu\\n", offsetof(struct ${cName}, ${C_FIELD_NAMES[m] ?? m}));`),
    ]);
    const source = ['#include <stddef.h>', '#include <stdio.h>', '#include <bpf/bpf.h>', '#include <bpf/libbpf.h>', '#include <bpf/btf.h>',
      'int main(void) {', ...lines, 'return 0; }'].join('\n');
    const src = path.join(dir, 'layout.c');
    const exe = path.join(dir, 'layout');
    writeFileSync(src, source);
    await run('cc', [src, '-o', exe]);
    const fromC = (await run(exe)).stdout.trim().split('\n');
    const fromKoffi = MIRRORS.flatMap(({ type, cName, prefixOnly }) => [
      ...(prefixOnly ? [] : [`${cName} sizeof ${koffi.sizeof(type)}`]),
      ...memberNames(type).map((m) => `${cName} ${m} ${koffi.offsetof(type, m)}`),
    ]);
    expect(fromKoffi).to.deep.equal(fromC);
  });

  it('loaded libbpf 1.x, whose calls return -errno', function () {
    expect(fn.majorVersion()).to.be.at.least(1);
  });
});
