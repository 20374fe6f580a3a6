/** The HTTP status of a control error code (the body keeps the code and message). */
const STATUS: Readonly<Record<string, number>> = {
  INVALID_ARGUMENT: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  ALREADY_EXISTS: 409,
  NAME_TAKEN: 409,
  WRONG_STATE: 409,
  FAILED_PRECONDITION: 409,
  IN_PROGRESS: 409,
  STALE_EPOCH: 409,
  NOT_MIGRATABLE: 409,
  CONSOLE_BUSY: 409,
  TOO_LARGE: 413,
  NO_CAPACITY: 507,
  RESOURCE_EXHAUSTED: 429,
  RATE_LIMITED: 429,
  UNIMPLEMENTED: 501,
  UNAVAILABLE: 503,
  TIMEOUT: 504
}

export function httpStatus (code: string): number {
  return STATUS[code] ?? 500
}
