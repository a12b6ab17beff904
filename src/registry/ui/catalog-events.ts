import { instanceHealth } from '../../catalog/model';
import type { CatalogView } from '../catalog-view';
import type { EventLog } from './event-log';

/**
 * Catalog changes as timeline events: an instance registered or deregistered, its health
 * flipping, drained or undrained — each instance's record before the change against after it
 * (the view hands both). A full re-read names no instances and makes no events.
 */
export function followCatalog(view: CatalogView, events: EventLog): () => void {
  return view.onChange((_change, instanceIds, previous) => {
    if (instanceIds === undefined || previous === undefined) return;
    for (const id of instanceIds) {
      const before = previous.get(id);
      const now = view.instance(id);
      if (now === undefined) {
        if (before !== undefined) events.add({ kind: 'deregistered', service: before.service, instance: id, detail: `${id} deregistered` });
        continue;
      }
      const health = instanceHealth(now);
      const drained = now.drained === true;
      if (before === undefined) {
        events.add({ kind: 'registered', service: now.service, instance: id, detail: `${id} registered (${health})` });
        continue;
      }
      const healthBefore = instanceHealth(before);
      if (healthBefore !== health) events.add({ kind: 'health', service: now.service, instance: id, detail: `${id} ${healthBefore} → ${health}` });
      if ((before.drained === true) !== drained) events.add({ kind: 'drained', service: now.service, instance: id, detail: `${id} ${drained ? 'drained' : 'undrained'}` });
    }
  });
}
