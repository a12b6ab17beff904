/**
 * Errors are values with stable codes. HTTP responses, logs and metrics all use `code`;
 * nothing should ever match on `message`.
 */
export type ErrorCode =
  // registry API
  | 'bad_request'
  /** Refused by policy: protected mode, a Host the API does not answer to. */
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'store_unavailable'
  /** A Consul endpoint (or option) this registry does not implement. */
  | 'not_implemented'
  /** A known path asked with a method it does not take (the answer says which it does). */
  | 'method_not_allowed'
  /** The embedded store's disk is full: writes wait for space, reads go on. */
  | 'insufficient_storage'
  /** A leader-only write was refused by the election's fence: another process leads now. */
  | 'not_leader'
  // proxy data plane
  | 'unknown_service'
  | 'no_healthy_upstream'
  | 'upstream_unreachable'
  | 'upstream_timeout'
  /** The upstream's response cannot be relayed faithfully (bad status, reason, framing). */
  | 'upstream_invalid_response'
  | 'overloaded'
  /** A client holds more connections than it may, or writes faster than it may. */
  | 'too_many_requests'
  /** More request header lines than `proxy.maxRequestHeaders`. */
  | 'too_many_headers'
  /** A bug of ours surfaced while handling one request: that request fails, nothing else. */
  | 'internal_error'
  // process
  | 'config_invalid'
  | 'address_in_use'
  | 'data_dir_locked'
  | 'journal_corrupt';

const HTTP_STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  store_unavailable: 503,
  not_implemented: 501,
  method_not_allowed: 405,
  insufficient_storage: 507,
  not_leader: 503,
  unknown_service: 404,
  no_healthy_upstream: 503,
  upstream_unreachable: 502,
  upstream_timeout: 504,
  upstream_invalid_response: 502,
  overloaded: 503,
  too_many_requests: 429,
  too_many_headers: 431,
  internal_error: 500,
  config_invalid: 500,
  address_in_use: 500,
  data_dir_locked: 500,
  journal_corrupt: 500,
};

export class SwitchboardError extends Error {
  readonly code: ErrorCode;
  /** For bad_request / config_invalid: the offending field path (e.g. `Check.TTL`). */
  readonly field?: string;

  constructor(code: ErrorCode, message: string, options: { field?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SwitchboardError';
    this.code = code;
    this.field = options.field;
  }

  get status(): number {
    return HTTP_STATUS[this.code];
  }

  toJSON(): { error: ErrorCode; message: string; field?: string } {
    return this.field === undefined
      ? { error: this.code, message: this.message }
      : { error: this.code, message: this.message, field: this.field };
  }
}

export function badRequest(field: string, reason: string): SwitchboardError {
  return new SwitchboardError('bad_request', `${field}: ${reason}`, { field });
}

export function isSwitchboardError(err: unknown, code?: ErrorCode): err is SwitchboardError {
  return err instanceof SwitchboardError && (code === undefined || err.code === code);
}
