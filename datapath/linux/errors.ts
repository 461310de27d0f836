// Failures of the Linux datapath that are not a single libbpf call: they name the endpoint,
// map or file involved and why the request cannot be carried out.
export class DatapathError extends Error {
  constructor(
    readonly subject: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${subject}: ${reason}`, options);
    this.name = 'DatapathError';
  }
}
