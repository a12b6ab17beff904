import type { TxnCompare } from '../store/store';
import type { Election } from './election';

/** One process, one leader: `switchboard all` and any embedded-store registry. */
export class LocalElection implements Election {
  constructor(private readonly address: () => string) {}

  async start(): Promise<void> {}

  isLeader(): boolean {
    return true;
  }

  leader(): string {
    return this.address();
  }

  members(): string[] {
    return [this.address()];
  }

  token(): number {
    return 0;
  }

  /** Nobody else can lead: nothing to fence against. */
  fence(): TxnCompare[] {
    return [];
  }

  onChange(listener: (leading: boolean) => void): () => void {
    queueMicrotask(() => listener(true));
    return () => undefined;
  }

  async stop(): Promise<void> {}
}
