import { SwitchboardError, isSwitchboardError } from '../../errors';

/** Any store failure is `store_unavailable` to our callers (HTTP 503), but a full disk (507). */
export async function guardStore<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (isSwitchboardError(err, 'store_unavailable') || isSwitchboardError(err, 'insufficient_storage')) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    throw new SwitchboardError('store_unavailable', `store unavailable: ${reason}`, { cause: err });
  }
}
