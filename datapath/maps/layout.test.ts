// The codecs' struct layouts against the BTF of the object `make -C bpf` built: a change on
// either side that moves a field fails here.
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import type { Btf } from '../libbpf/btf.js';
import { BpfObject } from '../libbpf/object.js';
import { LXC_OBJECT_PATH } from '../linux/paths.js';
import { DATAPATH_LAYOUTS } from './datapath-layouts.js';
import { assertLayouts, at, LayoutMismatchError, layoutMismatches } from './layout.js';
import { ENDPOINT_INFO_LAYOUT } from './lxc.js';

describe('codec layouts against bpf_lxc.o BTF', function () {
  let obj: BpfObject | undefined;
  let btf: Btf;

  before(function () {
    expect(existsSync(LXC_OBJECT_PATH), `${LXC_OBJECT_PATH} (run make -C bpf)`).to.equal(true);
    obj = BpfObject.open(LXC_OBJECT_PATH);
    btf = obj.btf();
  });
  after(function () {
    obj?.close();
  });

  it('match every struct the codecs use, member by member', function () {
    expect(layoutMismatches(btf, DATAPATH_LAYOUTS)).to.deep.equal([]);
    expect(DATAPATH_LAYOUTS.map((l) => l.struct)).to.include.members(['endpoint_info', 'ipcache_key', 'policy_key', 'policy_entry', 'ipv4_ct_tuple', 'ct_entry', 'metrics_key', 'drop_notify']);
  });

  it('report a moved member, a wrong size and a missing struct by name', function () {
    const drifted = [
      { ...ENDPOINT_INFO_LAYOUT, size: 40, members: { ...ENDPOINT_INFO_LAYOUT.members, sec_id: at(28, 4), lxc_id: at(6, 4) } },
      { struct: 'no_such_struct', size: 4, members: {} },
    ];
    expect(layoutMismatches(btf, drifted)).to.deep.equal([
      'endpoint_info: size 48 in BTF, 40 in codec',
      'endpoint_info.lxc_id: size 2 in BTF, 4 in codec',
      'endpoint_info.sec_id: offset 32 in BTF, 28 in codec',
      layoutMismatches(btf, [drifted[1]!])[0],
    ]);
    expect(layoutMismatches(btf, [drifted[1]!])[0]).to.match(/^no_such_struct: not in BTF/);
    expect(() => assertLayouts(btf, drifted, 'bpf_lxc.o')).to.throw(LayoutMismatchError, /struct layouts of bpf_lxc.o differ[\s\S]*endpoint_info.sec_id/);
  });
});
