import { expect } from 'chai';
import { AgentApiError, AgentUnreachableError } from '../agent/api/client.js';
import { agentFailure, whenAgentAnswers } from './agent.js';
import { CNI_ERR, CniError } from './errors.js';

describe('cni/agent failures', () => {
  it('maps agent answers to CNI codes: transient ones to "try again later", the rest to the step code', () => {
    const unreachable = new AgentUnreachableError('/run/x.sock', new Error('connect ENOENT /run/x.sock'));
    expect(agentFailure(unreachable, CNI_ERR.ipamFailed, 'allocating').code).to.equal(CNI_ERR.tryAgainLater);
    expect(agentFailure(new AgentApiError('PUT', '/endpoint/x', 503, 'restoring'), CNI_ERR.endpointCreateFailed, 'creating').code).to.equal(CNI_ERR.tryAgainLater);
    expect(agentFailure(new AgentApiError('PUT', '/endpoint/x', 429, 'slow down'), CNI_ERR.endpointCreateFailed, 'creating').code).to.equal(CNI_ERR.tryAgainLater);
    const rejected = agentFailure(new AgentApiError('PUT', '/endpoint/x', 400, 'k8s-pod-name: bad'), CNI_ERR.endpointCreateFailed, 'creating the endpoint');
    expect(rejected).to.include({ code: CNI_ERR.endpointCreateFailed, msg: 'creating the endpoint' });
    expect(rejected.details).to.contain('k8s-pod-name: bad');
  });

  it('waits for an agent that is not up yet, then gives up with "try again later"', async () => {
    let calls = 0;
    const answer = await whenAgentAnswers(() => {
      calls++;
      return calls < 3 ? Promise.reject(new AgentUnreachableError('/x', new Error('ECONNREFUSED'))) : Promise.resolve('up');
    }, 5_000);
    expect(answer).to.equal('up');
    expect(calls).to.equal(3);
    const err = await whenAgentAnswers(() => Promise.reject(new AgentUnreachableError('/x', new Error('ENOENT'))), 250).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(CniError);
    expect((err as CniError).code).to.equal(CNI_ERR.tryAgainLater);
    expect((err as CniError).details).to.contain('waited 250 ms');
  });
});
