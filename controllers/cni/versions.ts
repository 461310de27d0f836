// The CNI spec versions this plugin speaks. Results are built once and printed in the version the
// network configuration asks for: 0.3.x/0.4.0 carry "version" on each IP, 1.0.0 does not.

export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];

/** What VERSION prints as its own cniVersion, and what an error carries when the input names none. */
export const CURRENT_VERSION: CniVersion = '1.0.0';

export function isSupportedVersion(v: string): v is CniVersion {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** Result shape of the 0.3.0–0.4.0 specs (Go's types/040). */
export function isLegacyResultVersion(v: CniVersion): boolean {
  return v.startsWith('0.');
}
