// CiliumEndpoint: the agent's view of one pod's endpoint, all in status. Upstream declares no
// status subresource for it: the agent writes the whole object. Numbers carry no bounds, as
// upstream's do not: an exported endpoint must apply unchanged.
import type { KindDefinition } from './crd.js';
import { arr, bool, enumOf, int, mapOf, obj, str } from './openapi.js';
import type { SchemaProps } from './openapi.js';

export const endpointStates = [
  'creating', 'waiting-for-identity', 'not-ready', 'waiting-to-regenerate', 'regenerating', 'restoring',
  'ready', 'disconnecting', 'disconnected', 'invalid',
] as const;

function identityTuple(): SchemaProps {
  return obj(
    {
      identity: int({ format: 'int64' }),
      'identity-labels': mapOf(str()),
      'dest-port': int(),
      protocol: int(),
    },
    { title: 'IdentityTuple' },
  );
}

function directionPolicy(): SchemaProps {
  return obj(
    {
      enforcing: bool(),
      state: enumOf(['enforcing', 'non-enforcing', 'disabled']),
      allowed: arr(identityTuple()),
      denied: arr(identityTuple()),
      adding: arr(identityTuple(), { description: 'deprecated: identities being added to allowed' }),
      removing: arr(identityTuple(), { description: 'deprecated: identities being removed from allowed' }),
    },
    { title: 'EndpointPolicyDirection', required: ['enforcing'] },
  );
}

function controllerStatus(): SchemaProps {
  return obj(
    {
      name: str(),
      uuid: str(),
      configuration: obj(
        { 'error-retry': bool(), 'error-retry-base': str(), interval: str() },
        { title: 'ControllerConfiguration' },
      ),
      status: obj(
        {
          'consecutive-failure-count': int(),
          'failure-count': int(),
          'last-failure-msg': str(),
          'last-failure-timestamp': str(),
          'last-success-timestamp': str(),
          'success-count': int(),
        },
        { title: 'ControllerStatusDetail' },
      ),
    },
    { title: 'ControllerStatus' },
  );
}

function endpointStatus(): SchemaProps {
  return obj(
    {
      id: int({ format: 'int64' }),
      identity: obj({ id: int({ format: 'int64' }), labels: arr(str()) }, { title: 'EndpointIdentity' }),
      networking: obj(
        {
          addressing: arr(obj({ ipv4: str(), ipv6: str() }, { title: 'AddressPair' })),
          node: str(),
        },
        { title: 'EndpointNetworking', required: ['addressing'] },
      ),
      state: enumOf(endpointStates),
      policy: obj({ ingress: directionPolicy(), egress: directionPolicy() }, { title: 'EndpointPolicy' }),
      'visibility-policy-status': str(),
      encryption: obj({ key: int() }, { title: 'EncryptionSpec' }),
      'named-ports': arr(
        obj(
          { name: str(), port: int(), protocol: enumOf(['TCP', 'UDP', 'SCTP', 'ANY']) },
          { title: 'NamedPort' },
        ),
      ),
      'service-account': str(),
      'external-identifiers': obj(
        {
          'container-id': str(),
          'container-name': str(),
          'k8s-namespace': str(),
          'k8s-pod-name': str(),
          'pod-name': str(),
          'cni-attachment-id': str(),
          'docker-endpoint-id': str(),
          'docker-network-id': str(),
        },
        { title: 'EndpointIdentifiers' },
      ),
      health: obj(
        { bpf: str(), policy: str(), connected: bool(), overallHealth: str() },
        { title: 'EndpointHealth' },
      ),
      controllers: arr(controllerStatus()),
      log: arr(
        obj(
          { code: enumOf(['ok', 'failed']), message: str(), state: str(), timestamp: str() },
          { title: 'EndpointStatusChange' },
        ),
      ),
    },
    { title: 'EndpointStatus' },
  );
}

export const ciliumEndpoint: KindDefinition = {
  kind: 'CiliumEndpoint',
  plural: 'ciliumendpoints',
  singular: 'ciliumendpoint',
  shortNames: ['cep', 'ciliumep'],
  scope: 'Namespaced',
  categories: ['cilium'],
  columns: [
    { name: 'Endpoint ID', type: 'integer', jsonPath: '.status.id', description: 'node-local endpoint ID' },
    { name: 'Identity ID', type: 'integer', jsonPath: '.status.identity.id', description: 'security identity' },
    { name: 'Ingress Enforcement', type: 'boolean', jsonPath: '.status.policy.ingress.enforcing' },
    { name: 'Egress Enforcement', type: 'boolean', jsonPath: '.status.policy.egress.enforcing' },
    { name: 'Visibility Policy', type: 'string', jsonPath: '.status.visibility-policy-status' },
    { name: 'Endpoint State', type: 'string', jsonPath: '.status.state' },
    { name: 'IPv4', type: 'string', jsonPath: '.status.networking.addressing[0].ipv4' },
    { name: 'IPv6', type: 'string', jsonPath: '.status.networking.addressing[0].ipv6' },
  ],
  statusSubresource: false,
  fields: { status: endpointStatus() },
  description: 'CiliumEndpoint is the status of one Cilium endpoint (a pod), written by the agent on its node.',
};
