import type { Election } from '../../src/registry/election/election';
import type { TxnCompare } from '../../src/registry/store/store';

/** An election the test decides: `setLeader(true/false)` flips leadership and tells listeners. */
export class FakeElection implements Election {
  private leading: boolean;
  private readonly listeners = new Set<(leading: boolean) => void>();

  constructor(leading = false, private readonly address = '127.0.0.1:8500') {
    this.leading = leading;
  }

  setLeader(leading: boolean): void {
    this.leading = leading;
    for (const l of [...this.listeners]) l(leading);
  }

  async start(): Promise<void> {}
  isLeader(): boolean {
    return this.leading;
  }
  leader(): string {
    return this.leading ? this.address : '';
  }
  members(): string[] {
    return [this.address];
  }
  token(): number {
    return this.leading ? 1 : 0;
  }
  /** Tests that need a real fence set `fenceWith`; by default there is none. */
  fenceWith: TxnCompare[] = [];
  fence(): TxnCompare[] {
    return this.fenceWith;
  }
  onChange(listener: (leading: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  async stop(): Promise<void> {}
}
