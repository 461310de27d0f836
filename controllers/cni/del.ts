// CNI DEL: idempotent, and it succeeds whenever the pod can be torn down, because kubelet retries a
// failed DEL for as long as the pod exists. The endpoint goes through the agent (which releases its
// IP); an agent that is down gets a queued request instead. The pod's interface is deleted in its
// namespace, or, with the namespace gone or not given, the host end is deleted if it is still there.
// The queue (a rare path) is loaded only when needed: what it loads costs every call ~5 ms.
import { existsSync } from 'node:fs';
import { AgentUnreachableError } from '../agent/api/client.js';
import { agentCalls, isAgentStatus } from './agent.js';
import type { CommandContext } from './add.js';
import { hostIfnameFor, removePodInterface, removePodLink } from './pod-link.js';

export async function cmdDel(ctx: CommandContext): Promise<void> {
  // Independent: the agent's removal does not touch the link, so both go at once.
  await Promise.all([deleteEndpoint(ctx), deleteInterface(ctx)]);
  ctx.timer.mark('endpoint_link');
}

async function deleteEndpoint({ args, conf, agent, log }: CommandContext): Promise<void> {
  try {
    await agentCalls.deleteByContainer(agent, args.containerId);
    log.info('endpoint deleted');
  } catch (err) {
    if (err instanceof AgentUnreachableError) {
      const { enqueueDelete } = await import('./delete-queue.js');
      const file = await enqueueDelete(conf.deleteQueueDir, { 'container-id': args.containerId, ifname: args.ifname, netns: args.netns });
      log.warn('agent unreachable: endpoint deletion queued', { file, error: err.message });
    } else if (isAgentStatus(err, 404)) {
      log.info('no endpoint for this container');
    } else {
      // Upstream too: the agent removes the endpoint even when it reports errors; retrying cannot help.
      log.warn('agent reported errors deleting the endpoint', { error: (err as Error).message });
    }
  }
}

async function deleteInterface({ args, log }: CommandContext): Promise<void> {
  const host = hostIfnameFor(args.containerId, args.ifname);
  try {
    const removed = args.netns !== '' && (await removePodInterface(args.ifname, args.netns));
    if (!removed && existsSync(`/sys/class/net/${host}`)) await removePodLink(host);
  } catch (err) {
    log.warn('deleting the pod interface failed', { error: (err as Error).message });
  }
}
