// Field checks for JSON the endpoint manager reads (REST request bodies, its own state files):
// each names the field path and the reason, so a bad value is reported where it came from.
import { InvalidNetworkValueError, assertIPv4, assertIfName, assertMac } from '../../../datapath/netns/validate.js';

export class InvalidFieldError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = 'InvalidFieldError';
  }
}

export type Check = (value: unknown, field: string) => void;

export function fail(field: string, reason: string): never {
  throw new InvalidFieldError(field, reason);
}

export const str: Check = (v, f) => {
  if (typeof v !== 'string') fail(f, `${JSON.stringify(v)} is not a string`);
};

export const bool: Check = (v, f) => {
  if (typeof v !== 'boolean') fail(f, `${JSON.stringify(v)} is not a boolean`);
};

export function integer(min: number, max: number): Check {
  return (v, f) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(f, `${JSON.stringify(v)} is not an integer in ${min}..${max}`);
  };
}

export const uint32 = integer(0, 0xffffffff);

/** One of datapath/netns's asserts, its verdict reported for `field`. */
function network(assert: (value: string, field: string) => string): Check {
  return (v, f) => {
    str(v, f);
    try {
      assert(v as string, f);
    } catch (err) {
      if (!(err instanceof InvalidNetworkValueError)) throw err;
      // Its message is "invalid <field> <value>: <reason>"; keep the reason.
      const prefix = `invalid ${f} ${JSON.stringify(v)}: `;
      fail(f, `${JSON.stringify(v)}: ${err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message}`);
    }
  };
}

export const ipv4 = network(assertIPv4);
export const mac = network(assertMac);
export const ifname = network(assertIfName);

export function oneOf(values: readonly string[]): Check {
  return (v, f) => {
    if (!values.includes(v as string)) fail(f, `${JSON.stringify(v)} is not one of ${values.join(', ')}`);
  };
}

export function listOf(item: Check): Check {
  return (v, f) => {
    if (!Array.isArray(v)) fail(f, 'must be a list');
    v.forEach((x, i) => item(x, `${f}[${i}]`));
  };
}

export const stringMap: Check = (v, f) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(f, 'must be an object');
  for (const [k, x] of Object.entries(v)) str(x, `${f}[${JSON.stringify(k)}]`);
};

/**
 * An object whose listed fields pass their checks; absent and `null` fields are skipped (null is
 * absent, as in Go), fields in `required` must be present, unlisted fields are ignored.
 */
export function object(fields: Record<string, Check>, required: readonly string[] = []): Check {
  return (v, f) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(f === '' ? '(body)' : f, 'must be an object');
    for (const [k, check] of Object.entries(fields)) {
      const path = f === '' ? k : `${f}.${k}`;
      const value = (v as Record<string, unknown>)[k];
      if (value !== undefined && value !== null) check(value, path);
      else if (required.includes(k)) fail(path, 'is required');
    }
  };
}
