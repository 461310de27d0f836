// The Cilium policy Rule (pkg/policy/api upstream) shared by CiliumNetworkPolicy and
// CiliumClusterwideNetworkPolicy: subject selector, allow and deny rules per direction, L4 ports
// and L7 rules. Field names, enums and limits follow upstream; patterns are rewritten so that a
// backtracking regex engine (ajv) cannot blow up on them and so that "99999" is not a port.
import { celRule, oneSubjectSelector } from './cel-rules.js';
import { cidrField } from './cidr-field.js';
import { arr, bool, enumOf, exactlyOneOf, int, mapOf, obj, str } from './openapi.js';
import type { SchemaProps } from './openapi.js';
import { labelSelector } from './selector.js';

export const entities = [
  'all', 'world', 'world-ipv4', 'world-ipv6', 'cluster', 'cluster-mesh', 'host', 'remote-node',
  'kube-apiserver', 'ingress', 'init', 'health', 'unmanaged', 'none',
] as const;

export const l4Protocols = ['TCP', 'UDP', 'SCTP', 'VRRP', 'IGMP', 'ANY'] as const;

export const icmpTypeNames = [
  'EchoReply', 'DestinationUnreachable', 'Redirect', 'Echo', 'RouterAdvertisement', 'RouterSelection',
  'TimeExceeded', 'ParameterProblem', 'Timestamp', 'TimestampReply', 'Photuris', 'ExtendedEchoRequest',
  'ExtendedEchoReply', 'PacketTooBig', 'EchoRequest', 'MulticastListenerQuery', 'MulticastListenerReport',
  'MulticastListenerDone', 'RouterSolicitation', 'NeighborSolicitation', 'NeighborAdvertisement',
  'RedirectMessage', 'RouterRenumbering', 'ICMPNodeInformationQuery', 'ICMPNodeInformationResponse',
  'InverseNeighborDiscoverySolicitation', 'InverseNeighborDiscoveryAdvertisement',
  'HomeAgentAddressDiscoveryRequest', 'HomeAgentAddressDiscoveryReply', 'MobilePrefixSolicitation',
  'MobilePrefixAdvertisement', 'DuplicateAddressRequestCodeSuffix', 'DuplicateAddressConfirmationCodeSuffix',
] as const;

// A number 0-65535 or an IANA service name (a named container port). Upstream's pattern lacks the
// outer group, so its "^" binds only to the number and "99999" passes.
const portPattern =
  '^((6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})|([a-zA-Z0-9]-?)*[a-zA-Z](-?[a-zA-Z0-9])*)$';
const fqdnNamePattern = '^[-a-zA-Z0-9_]+([.][-a-zA-Z0-9_]+)*[.]?$';
const fqdnWildcardPattern = '^[-a-zA-Z0-9_*]+([.][-a-zA-Z0-9_*]+)*[.]?$';
const serverNamePattern = '^([*]?[*][.])?[-a-zA-Z0-9_]+([.][-a-zA-Z0-9_]+)*[.]?$';
const dnsSubdomainPattern = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
const icmpTypePattern = `^([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5]|${icmpTypeNames.join('|')})$`;

function cidrRule(): SchemaProps {
  return obj(
    {
      cidr: cidrField(),
      cidrGroupRef: str({ maxLength: 253, pattern: dnsSubdomainPattern }),
      cidrGroupSelector: labelSelector('selects CiliumCIDRGroups by their labels'),
      except: arr(cidrField(), { description: 'CIDRs carved out of cidr' }),
    },
    { title: 'CIDRRule', ...exactlyOneOf(['cidr', 'cidrGroupRef', 'cidrGroupSelector']) },
  );
}

function groups(): SchemaProps {
  return obj(
    {
      aws: obj(
        {
          labels: mapOf(str()),
          securityGroupsIds: arr(str()),
          securityGroupsNames: arr(str()),
          region: str(),
        },
        { title: 'AWSGroup' },
      ),
    },
    { title: 'Groups' },
  );
}

function service(): SchemaProps {
  return obj(
    {
      k8sService: obj({ serviceName: str(), namespace: str() }, { title: 'K8SServiceNamespace' }),
      k8sServiceSelector: obj(
        { selector: labelSelector('selects Services by their labels'), namespace: str() },
        { title: 'K8SServiceSelectorNamespace', required: ['selector'] },
      ),
    },
    { title: 'Service' },
  );
}

function portProtocol(): SchemaProps {
  return obj(
    {
      port: str({ maxLength: 15, pattern: portPattern, description: 'a port number 0-65535 or a named port' }),
      endPort: int({ format: 'int32', minimum: 0, maximum: 65535, description: 'last port of a range starting at port' }),
      protocol: enumOf(l4Protocols),
    },
    { title: 'PortProtocol' },
  );
}

function ports(): SchemaProps {
  return arr(portProtocol(), { maxItems: 40 });
}

function secret(): SchemaProps {
  return obj({ namespace: str(), name: str() }, { title: 'Secret', required: ['name'] });
}

function tlsContext(): SchemaProps {
  return obj(
    { secret: secret(), trustedCA: str(), certificate: str(), privateKey: str() },
    { title: 'TLSContext', required: ['secret'] },
  );
}

function fqdnSelector(): SchemaProps {
  return obj(
    {
      matchName: str({ maxLength: 255, pattern: fqdnNamePattern }),
      matchPattern: str({ maxLength: 255, pattern: fqdnWildcardPattern }),
    },
    { title: 'FQDNSelector', ...exactlyOneOf(['matchName', 'matchPattern']) },
  );
}

function httpRule(): SchemaProps {
  return obj(
    {
      path: str({ description: 'extended POSIX regex matched against the URL path' }),
      method: str({ description: 'extended POSIX regex matched against the method' }),
      host: str({ description: 'extended POSIX regex matched against the host header' }),
      headers: arr(str()),
      headerMatches: arr(
        obj(
          { mismatch: enumOf(['LOG', 'ADD', 'DELETE', 'REPLACE']), name: str({ minLength: 1 }), secret: secret(), value: str() },
          { title: 'HeaderMatch', required: ['name'] },
        ),
      ),
    },
    { title: 'PortRuleHTTP' },
  );
}

function kafkaRule(): SchemaProps {
  return obj(
    {
      role: enumOf(['produce', 'consume']),
      apiKey: str(),
      apiVersion: str(),
      clientID: str(),
      topic: str({ maxLength: 255 }),
    },
    { title: 'PortRuleKafka' },
  );
}

function l7Rules(): SchemaProps {
  return obj(
    {
      http: arr(httpRule()),
      kafka: arr(kafkaRule()),
      dns: arr(fqdnSelector()),
      l7proto: str(),
      l7: arr(mapOf(str()), { description: 'key-value pairs for the l7proto parser' }),
    },
    { title: 'L7Rules', description: 'one L7 protocol per port', ...exactlyOneOf(['http', 'kafka', 'dns', 'l7proto']) },
  );
}

function portRule(): SchemaProps {
  return obj(
    {
      ports: ports(),
      terminatingTLS: tlsContext(),
      originatingTLS: tlsContext(),
      serverNames: arr(str({ maxLength: 255, pattern: serverNamePattern }), { minItems: 1 }),
      listener: obj(
        {
          envoyConfig: obj(
            { kind: enumOf(['CiliumEnvoyConfig', 'CiliumClusterwideEnvoyConfig']), name: str({ minLength: 1 }) },
            { title: 'EnvoyConfig', required: ['name'] },
          ),
          name: str({ minLength: 1 }),
          priority: int({ minimum: 1, maximum: 100 }),
        },
        { title: 'Listener', required: ['envoyConfig', 'name'] },
      ),
      rules: l7Rules(),
    },
    { title: 'PortRule' },
  );
}

function portDenyRule(): SchemaProps {
  return obj({ ports: ports() }, { title: 'PortDenyRule' });
}

function icmpRule(): SchemaProps {
  return obj(
    {
      fields: arr(
        obj(
          {
            family: enumOf(['IPv4', 'IPv6'], { default: 'IPv4' }),
            type: {
              'x-kubernetes-int-or-string': true,
              minimum: 0,
              maximum: 255,
              pattern: icmpTypePattern,
              description: 'ICMP type as a number 0-255 or its name',
            },
          },
          { title: 'ICMPField', required: ['type'] },
        ),
        { maxItems: 40 },
      ),
    },
    { title: 'ICMPRule' },
  );
}

function authentication(): SchemaProps {
  return obj({ mode: enumOf(['disabled', 'required', 'test-always-fail']) }, { title: 'Authentication', required: ['mode'] });
}

type Direction = 'ingress' | 'egress';

// The peer fields shared by allow and deny rules of one direction.
function peers(direction: Direction): Record<string, SchemaProps> {
  const p = direction === 'ingress' ? 'from' : 'to';
  const fields: Record<string, SchemaProps> = {
    [`${p}Endpoints`]: arr(labelSelector(), { description: 'peer endpoints, selected by their labels' }),
    [`${p}Requires`]: arr(labelSelector(), { description: 'deprecated: peers must also match these selectors' }),
    [`${p}CIDR`]: arr(cidrField()),
    [`${p}CIDRSet`]: arr(cidrRule()),
    [`${p}Entities`]: arr(enumOf(entities, { title: 'Entity' })),
    [`${p}Groups`]: arr(groups()),
    [`${p}Nodes`]: arr(labelSelector(), { description: 'peer nodes, selected by their labels' }),
  };
  if (direction === 'egress') fields.toServices = arr(service());
  return fields;
}

function allowRule(direction: Direction): SchemaProps {
  const title = direction === 'ingress' ? 'IngressRule' : 'EgressRule';
  const fields: Record<string, SchemaProps> = {
    ...peers(direction),
    toPorts: arr(portRule()),
    icmps: arr(icmpRule()),
    authentication: authentication(),
  };
  if (direction === 'egress') fields.toFQDNs = arr(fqdnSelector());
  return obj(fields, { title });
}

function denyRule(direction: Direction): SchemaProps {
  const title = direction === 'ingress' ? 'IngressDenyRule' : 'EgressDenyRule';
  return obj({ ...peers(direction), toPorts: arr(portDenyRule()), icmps: arr(icmpRule()) }, { title });
}

export function policyRule(): SchemaProps {
  return obj(
    {
      endpointSelector: labelSelector('selects the endpoints this rule applies to'),
      nodeSelector: labelSelector('selects the nodes this rule applies to (host firewall, clusterwide policies)'),
      ingress: arr(allowRule('ingress')),
      ingressDeny: arr(denyRule('ingress')),
      egress: arr(allowRule('egress')),
      egressDeny: arr(denyRule('egress')),
      labels: arr(obj({ key: str(), value: str(), source: str() }, { title: 'Label', required: ['key'] })),
      enableDefaultDeny: obj({ ingress: bool(), egress: bool() }, { title: 'DefaultDenyConfig' }),
      description: str(),
      log: obj({ value: str({ maxLength: 32 }) }, { title: 'LogConfig' }),
    },
    {
      title: 'Rule',
      description: 'a Cilium policy rule: the endpoints or nodes it applies to and the traffic it allows or denies',
      'x-kubernetes-validations': [celRule(oneSubjectSelector)],
    },
  );
}
