import { expect } from 'chai';
import { createTestLink, removeTestLink, type TestLink } from '../linux/testing/fixtures.js';
import { BpfError } from './errors.js';
import type { BpfObject } from './object.js';
import type { BpfProgram } from './prog.js';
import { tcAttach, tcDetach, tcHookDestroy, tcQuery } from './tc.js';
import { fixtureSuite, tc, type FixtureSuite } from './testdata/fixtures.js';

describe('tc attach', function () {
  let suite: FixtureSuite | undefined;
  let link: TestLink | undefined;
  let ifindex = 0;
  const objects: BpfObject[] = [];
  const progs: BpfProgram[] = [];

  // Each load is a distinct program (its own id); they share the pinned map.
  function loadProgram(): BpfProgram {
    const obj = suite!.open();
    objects.push(obj);
    obj.load();
    const prog = obj.program('fixture_classify');
    progs.push(prog);
    return prog;
  }

  before(async function () {
    suite = await fixtureSuite();
  });
  beforeEach(async function () {
    // A veth pair: the kernel here has no dummy driver. Deleting one end removes both.
    link = await createTestLink('tc');
    ifindex = link.ifindex;
  });
  afterEach(async function () {
    try {
      // Deleting the link takes its clsact qdisc and filters with it.
      await removeTestLink(link);
    } finally {
      link = undefined;
      for (const p of progs.splice(0)) p.close();
      for (const o of objects.splice(0)) o.close();
    }
  });
  after(function () {
    suite?.remove();
  });

  it('attaches to ingress, queries the program id, and detaches', async function () {
    const prog = loadProgram();
    expect(tcQuery({ ifindex, hook: 'tc-ingress' })).to.equal(undefined);
    tcAttach({ ifindex, hook: 'tc-ingress', progFd: prog.fd });
    expect(tcQuery({ ifindex, hook: 'tc-ingress' })).to.equal(prog.id);
    expect(tcQuery({ ifindex, hook: 'tc-egress' })).to.equal(undefined);
    const shown = await tc('filter', 'show', 'dev', link!.ifname, 'ingress');
    expect(shown).to.match(/pref 1 bpf chain 0 handle 0x1 .*direct-action/);
    expect(shown).to.contain(` id ${prog.id} name fixture_classif `);
    tcDetach({ ifindex, hook: 'tc-ingress' });
    expect(tcQuery({ ifindex, hook: 'tc-ingress' })).to.equal(undefined);
    expect(() => tcDetach({ ifindex, hook: 'tc-ingress' })).to.throw(BpfError, new RegExp(`^detach tc filter ifindex ${ifindex} tc-ingress handle 1 priority 1: .*\\(errno 2\\)\nlibbpf: Kernel error message: `));
  });

  it('replaces the filter with the same handle and priority and keeps others apart', function () {
    const first = loadProgram();
    const second = loadProgram();
    tcAttach({ ifindex, hook: 'tc-egress', progFd: first.fd });
    tcAttach({ ifindex, hook: 'tc-egress', progFd: second.fd });
    expect(tcQuery({ ifindex, hook: 'tc-egress' })).to.equal(second.id);
    tcAttach({ ifindex, hook: 'tc-egress', progFd: first.fd, handle: 2, priority: 5 });
    expect(tcQuery({ ifindex, hook: 'tc-egress', handle: 2, priority: 5 })).to.equal(first.id);
    expect(tcQuery({ ifindex, hook: 'tc-egress' })).to.equal(second.id);
  });

  it('destroys the clsact hook with every filter, and tolerates a missing hook', async function () {
    const prog = loadProgram();
    tcAttach({ ifindex, hook: 'tc-ingress', progFd: prog.fd });
    tcAttach({ ifindex, hook: 'tc-egress', progFd: prog.fd });
    expect(await tc('qdisc', 'show', 'dev', link!.ifname)).to.contain('clsact');
    tcHookDestroy(ifindex);
    expect(await tc('qdisc', 'show', 'dev', link!.ifname)).to.not.contain('clsact');
    expect(tcQuery({ ifindex, hook: 'tc-ingress' })).to.equal(undefined);
    tcHookDestroy(ifindex);
  });

  it('names the interface when attaching to one that does not exist', function () {
    const prog = loadProgram();
    const gone = 0x7ffffff0;
    expect(() => tcAttach({ ifindex: gone, hook: 'tc-ingress', progFd: prog.fd })).to.throw(BpfError, new RegExp(`ifindex ${gone}: .*\\(errno 19\\)$`));
  });
});
