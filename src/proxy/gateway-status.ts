/**
 * Gateway errors — 502, 503, 504 — say the upstream (or something in front of it) failed as
 * a gateway, not that it answered badly: Envoy's `gateway-error`. Retries and outlier
 * detection both single them out, through this one definition.
 */
export function isGatewayStatus(status: number): boolean {
  return status >= 502 && status <= 504;
}
