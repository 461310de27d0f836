// Upstream's IPAM expiration: an address the CNI plugin allocates with `expiration: true` is
// released again after a while unless an endpoint with that address is created first, so a plugin
// that dies between POST /ipam and PUT /endpoint leaks nothing.
import { randomUUID } from 'node:crypto';

/** Upstream's expiration timeout: the time a CNI ADD has to create its endpoint. */
export const IPAM_EXPIRATION_MS = 10 * 60_000;

interface Pending {
  uuid: string;
  timer: NodeJS.Timeout;
}

export class IpamExpirations {
  private readonly pending = new Map<string, Pending>();

  constructor(
    /** Releases `ip` when its time is up; errors are the caller's to log. */
    private readonly expire: (ip: string) => void,
    private readonly timeoutMs = IPAM_EXPIRATION_MS,
  ) {}

  /** Starts the timer for a fresh allocation; returns its uuid. */
  start(ip: string): string {
    this.stop(ip);
    const uuid = randomUUID();
    const timer = setTimeout(() => {
      if (this.pending.get(ip)?.uuid !== uuid) return;
      this.pending.delete(ip);
      this.expire(ip);
    }, this.timeoutMs);
    timer.unref();
    this.pending.set(ip, { uuid, timer });
    return uuid;
  }

  /** The endpoint with `ip` exists, or the address was released: its timer goes. */
  stop(ip: string): void {
    const p = this.pending.get(ip);
    if (p === undefined) return;
    clearTimeout(p.timer);
    this.pending.delete(ip);
  }

  /**
   * Whether an endpoint create naming `uuid` for `ip` may stop its timer: upstream's
   * StopExpirationTimer refuses a uuid that is not the allocation's. No timer, or no uuid: yes.
   */
  accepts(ip: string, uuid: string | undefined): boolean {
    const p = this.pending.get(ip);
    return p === undefined || !uuid || uuid === p.uuid;
  }

  has(ip: string): boolean {
    return this.pending.has(ip);
  }

  stopAll(): void {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
  }
}
