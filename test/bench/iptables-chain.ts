// The iptables side of the benchmark: a dedicated filter chain that starts, as iptables-based
// engines' chains do, by accepting packets of ESTABLISHED or RELATED connections, then holds N
// rules a policy engine would write (allow source X to the server's port), none matching the
// measured flow, then the accepts for that flow and a drop for the rest of the pod subnet. So a
// new connection walks all N rules and the stream's packets stop at the first. FORWARD jumps to
// the chain only while the iptables case is measured, and everything goes with remove().
import { runCommand } from '../../datapath/netns/run.js';
import { assertIPv4 } from '../../datapath/netns/validate.js';

export const BENCH_CHAIN = 'CILIUM-TS-BENCH';
/** The conntrack accept, the flow's two accepts and the subnet drop, besides the N policy rules. */
export const FIXED_RULES = 4;

export interface FlowRules {
  client: string;
  server: string;
  port: number;
  /** The pod /24 ("10.x.y.0/24") whose other traffic the chain drops. */
  subnet: string;
}

/** Addresses in 172.16.0.0/12, far from the pod subnet: a rule with one never matches the flow. */
function otherSource(i: number): string {
  return `172.${16 + ((i >> 16) & 15)}.${(i >> 8) & 255}.${i & 255}`;
}

function ruleset(count: number, flow: FlowRules): string {
  const lines = ['*filter', `:${BENCH_CHAIN} - [0:0]`, `-A ${BENCH_CHAIN} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`];
  for (let i = 0; i < count; i++) {
    lines.push(`-A ${BENCH_CHAIN} -s ${otherSource(i)}/32 -d ${flow.server}/32 -p tcp -m tcp --dport ${1024 + (i % 60000)} -j ACCEPT`);
  }
  lines.push(
    `-A ${BENCH_CHAIN} -s ${flow.client}/32 -d ${flow.server}/32 -p tcp -m tcp --dport ${flow.port} -j ACCEPT`,
    `-A ${BENCH_CHAIN} -s ${flow.server}/32 -d ${flow.client}/32 -p tcp -m tcp --sport ${flow.port} -j ACCEPT`,
    `-A ${BENCH_CHAIN} -d ${flow.subnet} -j DROP`,
    'COMMIT',
    '',
  );
  return lines.join('\n');
}

async function iptables(context: string, args: string[]): Promise<void> {
  await runCommand(context, 'iptables', ['-w', ...args]);
}

export class IptablesChain {
  private constructor(readonly ruleCount: number) {}

  /** Loads the chain in one iptables-restore transaction (10,000 single `-A` calls take minutes). */
  static async create(count: number, flow: FlowRules): Promise<IptablesChain> {
    assertIPv4(flow.client, 'iptables flow client');
    assertIPv4(flow.server, 'iptables flow server');
    await IptablesChain.remove();
    await runCommand(`load ${count} rules into ${BENCH_CHAIN}`, 'iptables-restore', ['-w', '--noflush'], { input: ruleset(count, flow) });
    return new IptablesChain(count + FIXED_RULES);
  }

  async enable(): Promise<void> {
    await iptables(`jump FORWARD to ${BENCH_CHAIN}`, ['-I', 'FORWARD', '1', '-j', BENCH_CHAIN]);
  }

  async disable(): Promise<void> {
    await IptablesChain.unhook();
  }

  /** Rules in the chain as the kernel lists them (header line excluded). */
  async listedRules(): Promise<number> {
    const { stdout } = await runCommand(`list ${BENCH_CHAIN}`, 'iptables', ['-w', '-S', BENCH_CHAIN]);
    return stdout.split('\n').filter((l) => l.startsWith('-A ')).length;
  }

  /** Drops every FORWARD jump to the chain. */
  private static async unhook(): Promise<void> {
    const { stdout } = await runCommand('list FORWARD', 'iptables', ['-w', '-S', 'FORWARD']);
    const jumps = stdout.split('\n').filter((l) => l === `-A FORWARD -j ${BENCH_CHAIN}`).length;
    for (let i = 0; i < jumps; i++) await iptables(`remove FORWARD jump to ${BENCH_CHAIN}`, ['-D', 'FORWARD', '-j', BENCH_CHAIN]);
  }

  /** Removes the jumps and the chain, whether or not they exist (also leftovers of an interrupted run). */
  static async remove(): Promise<void> {
    await IptablesChain.unhook();
    const { stdout } = await runCommand('list filter chains', 'iptables', ['-w', '-S']);
    if (!stdout.split('\n').includes(`-N ${BENCH_CHAIN}`)) return;
    await iptables(`flush ${BENCH_CHAIN}`, ['-F', BENCH_CHAIN]);
    await iptables(`delete ${BENCH_CHAIN}`, ['-X', BENCH_CHAIN]);
  }
}
