import { instanceHealth, type HealthStatus } from '../../catalog/model';
import type { CatalogView } from '../catalog-view';
import type { EventLog } from './event-log';

/**
 * Catalog changes as timeline events: an instance registered or deregistered, its health
 * flipping, drained or undrained. Told by the view of the instances each change touched
 * (a full re-read names none: the state is taken afresh, without events).
 */
export function followCatalog(view: CatalogView, events: EventLog): () => void {
  const known = new Map<string, { service: string; health: HealthStatus; drained: boolean }>();
  const snapshot = (): void => {
    known.clear();
    for (const i of view.instances()) known.set(i.id, { service: i.service, health: instanceHealth(i), drained: i.drained === true });
  };
  snapshot();
  return view.onChange((_change, instanceIds) => {
    if (instanceIds === undefined) return snapshot();
    for (const id of instanceIds) {
      const before = known.get(id);
      const now = view.instance(id);
      if (now === undefined) {
        if (before !== undefined) events.add({ kind: 'deregistered', service: before.service, instance: id, detail: `${id} deregistered` });
        known.delete(id);
        continue;
      }
      const state = { service: now.service, health: instanceHealth(now), drained: now.drained === true };
      if (before === undefined) events.add({ kind: 'registered', service: now.service, instance: id, detail: `${id} registered (${state.health})` });
      else if (before.health !== state.health) events.add({ kind: 'health', service: now.service, instance: id, detail: `${id} ${before.health} → ${state.health}` });
      if (before !== undefined && before.drained !== state.drained) events.add({ kind: 'drained', service: now.service, instance: id, detail: `${id} ${state.drained ? 'drained' : 'undrained'}` });
      known.set(id, state);
    }
  });
}
