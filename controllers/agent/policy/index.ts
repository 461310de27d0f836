// The policy engine's API for the agent's policy loop: a repository fed with policies and
// identities, and the per-endpoint resolution handed to Datapath.syncPolicy.
export { IDENTITY_HOST, IDENTITY_WORLD, RESERVED_IDENTITIES, reservedLabels } from '../identity/reserved.js';
export { entitySelectors, LOCAL_IDENTITY_FLAG } from './identities.js';
export { type KubeNetworkPolicy, parseCiliumPolicy, parseNetworkPolicy, type ParseOptions } from './parse.js';
export { type PolicyChange, PolicyRepository } from './repository.js';
export { type EndpointInput, type NamedPort, type PolicyEnforcementMode, type ResolvedPolicy, resolvePolicy, type ResolveOptions } from './resolve.js';
export { type ParsedPolicy, PolicyParseError, type PolicyKind, type PolicyRef, policyRefKey, type Rule, type Unsupported, unsupportedMessage } from './rule.js';
export { EndpointSelector } from './selector.js';
