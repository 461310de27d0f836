// Our Hubble .proto files (proto/, upstream's packages and numbers) loaded for @grpc/grpc-js.
// Messages are plain objects in one convention everywhere (agent, relay, CLI): field names as in
// the .proto, 64-bit integers as decimal strings, enums as their names, oneofs named.
import { fileURLToPath } from 'node:url';
import { loadPackageDefinition, type GrpcObject, type ServiceClientConstructor, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync, type EnumTypeDefinition, type Options, type PackageDefinition } from '@grpc/proto-loader';

export const PROTO_DIR = fileURLToPath(new URL('./proto', import.meta.url));

export const LOADER_OPTIONS: Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [PROTO_DIR] };

const FILES = ['observer/observer.proto', 'peer/peer.proto', 'grpc/health/v1/health.proto'];

export interface HubbleProtos {
  definition: PackageDefinition;
  observer: ServiceDefinition;
  peer: ServiceDefinition;
  health: ServiceDefinition;
  /** Client constructors, for the relay, the CLI and tests. */
  ObserverClient: ServiceClientConstructor;
  PeerClient: ServiceClientConstructor;
  HealthClient: ServiceClientConstructor;
}

let loaded: HubbleProtos | undefined;

export function hubbleProtos(): HubbleProtos {
  if (loaded) return loaded;
  const definition = loadSync(FILES, LOADER_OPTIONS);
  const grpc = loadPackageDefinition(definition);
  const ObserverClient = (grpc.observer as GrpcObject).Observer as ServiceClientConstructor;
  const PeerClient = (grpc.peer as GrpcObject).Peer as ServiceClientConstructor;
  const HealthClient = (((grpc.grpc as GrpcObject).health as GrpcObject).v1 as GrpcObject).Health as ServiceClientConstructor;
  loaded = { definition, observer: ObserverClient.service, peer: PeerClient.service, health: HealthClient.service, ObserverClient, PeerClient, HealthClient };
  return loaded;
}

/** Value → name of one of the loaded enums (e.g. `flow.DropReason`); throws for an unknown enum. */
export function enumNames(fullName: string): ReadonlyMap<number, string> {
  const def = hubbleProtos().definition[fullName] as EnumTypeDefinition | undefined;
  if (def?.format !== 'Protocol Buffer 3 EnumDescriptorProto') throw new Error(`hubble protos: ${fullName} is not an enum`);
  const values = (def.type as { value: { name: string; number: number }[] }).value;
  return new Map(values.map((v) => [v.number, v.name]));
}

interface FieldDescriptor {
  name: string;
  typeName: string;
}

function messageFields(fullName: string): FieldDescriptor[] | undefined {
  const def = hubbleProtos().definition[fullName] as { format?: string; type?: { field: FieldDescriptor[] } } | undefined;
  return def?.format === 'Protocol Buffer 3 DescriptorProto' ? def.type?.field : undefined;
}

/** The field names of the message at `path` below `message` (e.g. flow.Flow, ['source']); undefined for a scalar or unknown path. */
export function fieldsAt(message: string, path: readonly string[]): string[] | undefined {
  let name = message;
  for (const part of path) {
    const field = messageFields(name)?.find((f) => f.name === part);
    if (field === undefined || field.typeName === '') return undefined;
    const pkg = name.slice(0, name.lastIndexOf('.'));
    name = messageFields(`${pkg}.${field.typeName}`) !== undefined ? `${pkg}.${field.typeName}` : field.typeName;
  }
  return messageFields(name)?.map((f) => f.name);
}
