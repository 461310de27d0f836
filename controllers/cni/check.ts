// CNI CHECK (upstream's): the agent still has a healthy endpoint for this attachment, and the pod's
// interface exists in its namespace with the addresses the previous result gave it.
import { AgentUnreachableError } from '../agent/api/client.js';
import { agentCalls } from './agent.js';
import type { CommandContext } from './add.js';
import { CNI_ERR, CniError } from './errors.js';
import { podAddresses } from './pod-link.js';
import { prevAttachment } from './result.js';

export async function cmdCheck(ctx: CommandContext): Promise<void> {
  const { args, conf, agent, timer } = ctx;
  if (conf.prevResult === undefined) throw new CniError(CNI_ERR.invalidNetworkConfig, 'invalid network configuration', 'field "prevResult": required for CHECK');
  const want = prevAttachment(conf.prevResult, args.ifname);

  let health;
  try {
    health = await agentCalls.health(agent, args.containerId, args.ifname);
  } catch (err) {
    // Not a failed check: the runtime should ask again once the agent is back.
    if (err instanceof AgentUnreachableError) throw new CniError(CNI_ERR.tryAgainLater, 'DaemonDown', `unable to connect to Cilium agent: ${err.message}`);
    throw new CniError(CNI_ERR.healthzGet, 'HealthzFailed', `failed to retrieve container health: ${(err as Error).message}`);
  }
  if (health.overallHealth === 'Failure') throw new CniError(CNI_ERR.unhealthy, 'Unhealthy', 'container is unhealthy in agent');
  timer.mark('health');

  let have: string[];
  try {
    have = await podAddresses(args.ifname, args.netns);
  } catch (err) {
    throw new CniError(CNI_ERR.interfaceCheck, 'interface check failed', `cannot find container link ${args.ifname} in ${args.netns}: ${(err as Error).message}`);
  }
  const missing = want.addresses.filter((a) => !have.includes(a));
  if (missing.length > 0) {
    throw new CniError(CNI_ERR.interfaceCheck, 'interface check failed', `expected ${missing.join(', ')} on ${args.ifname} in ${args.netns}, found [${have.join(', ')}]`);
  }
  timer.mark('interface');
}
