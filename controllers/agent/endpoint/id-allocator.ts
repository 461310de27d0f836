// Node-local endpoint ids (upstream pkg/endpointmanager/idallocator: 1..4095). The id names the
// endpoint in cilium_lxc, its policy map and every event, so it must be unique on the node and
// survive a restart: restored endpoints take their old ids back before anything new is handed out.

export const MIN_ENDPOINT_ID = 1;
export const MAX_ENDPOINT_ID = 4095;

export class EndpointIdAllocator {
  private readonly used = new Set<number>();

  /**
   * The lowest free id. Upstream picks a random free one; the lowest keeps ids small and
   * predictable, and a released id's datapath state is gone before removeEndpoint resolves.
   */
  allocate(): number {
    for (let id = MIN_ENDPOINT_ID; id <= MAX_ENDPOINT_ID; id++) {
      if (!this.used.has(id)) {
        this.used.add(id);
        return id;
      }
    }
    throw new Error(`endpoint id: all ${MAX_ENDPOINT_ID - MIN_ENDPOINT_ID + 1} ids (${MIN_ENDPOINT_ID}..${MAX_ENDPOINT_ID}) are in use`);
  }

  /** Takes a specific id (a restored endpoint's, or one a request names); throws if out of range or taken. */
  reuse(id: number): void {
    if (!Number.isInteger(id) || id < MIN_ENDPOINT_ID || id > MAX_ENDPOINT_ID) {
      throw new Error(`endpoint id ${id}: not an integer in ${MIN_ENDPOINT_ID}..${MAX_ENDPOINT_ID}`);
    }
    if (this.used.has(id)) throw new Error(`endpoint id ${id}: already in use`);
    this.used.add(id);
  }

  /** Frees `id`; false when it was not in use. */
  release(id: number): boolean {
    return this.used.delete(id);
  }

  inUse(id: number): boolean {
    return this.used.has(id);
  }

  get size(): number {
    return this.used.size;
  }
}
