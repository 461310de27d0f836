// Calls on a client of the loaded Hubble protos (its methods are untyped): a unary call with a
// deadline, and a server stream.
import type { Client, ClientReadableStream, ServiceError } from '@grpc/grpc-js';

type Unary = (req: object, opts: { deadline: number }, cb: (err: ServiceError | null, res: unknown) => void) => void;

export function unaryCall<T>(client: Client, method: string, req: object, timeoutMs: number): Promise<T> {
  const fn = (client as unknown as Record<string, Unary>)[method]!.bind(client);
  return new Promise<T>((resolve, reject) => fn(req, { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res as T))));
}

export function serverStream<T>(client: Client, method: string, req: object): ClientReadableStream<T> {
  return (client as unknown as Record<string, (r: object) => ClientReadableStream<T>>)[method]!(req);
}
