// The standard grpc.health.v1.Health service of the Hubble server and relay: `hubble status`
// checks the observer's service name (upstream v1.ObserverServiceName) through it.
import { status, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream, type UntypedServiceImplementation } from '@grpc/grpc-js';

/** The service name `hubble status` checks health for. */
export const OBSERVER_HEALTH_SERVICE = 'hubble.server.Observer';

export type ServingStatus = 'SERVING' | 'NOT_SERVING';

/** Answers for '' and the observer's name with `serving()`; any other service is unknown. */
export function healthService(serving: () => ServingStatus): UntypedServiceImplementation {
  const statusOf = (service: string) => (service === '' || service === OBSERVER_HEALTH_SERVICE ? serving() : undefined);
  return {
    Check: (call: ServerUnaryCall<{ service: string }, unknown>, done: sendUnaryData<unknown>) => {
      const s = statusOf(call.request.service);
      if (s === undefined) done({ code: status.NOT_FOUND, details: `unknown service ${JSON.stringify(call.request.service)}` });
      else done(null, { status: s });
    },
    Watch: (call: ServerWritableStream<{ service: string }, unknown>) => {
      call.write({ status: statusOf(call.request.service) ?? 'SERVICE_UNKNOWN' });
      call.on('cancelled', () => call.end());
    },
  };
}
