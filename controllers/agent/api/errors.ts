// An API answer other than success, with upstream's status code; the server sends the message as
// upstream's swagger `Error` (a JSON string).
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** 400 naming the input that is wrong and why. */
export function badRequest(field: string, reason: string): ApiError {
  return new ApiError(400, `${field}: ${reason}`);
}

export function notFound(what: string): ApiError {
  return new ApiError(404, `${what} not found`);
}
