/**
 * Real etcd for integration tests: a single member or an N-member cluster on free loopback
 * ports, each member in its own temp dir. Processes die with the test process (see child.ts).
 *
 *   const etcd = await startEtcd();            // etcd.endpoints = ['http://127.0.0.1:P']
 *   const cluster = await startEtcdCluster(3); // cluster.members[i].kill(), await cluster.leaderIndex()
 *   after(() => cluster.stop());
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { freePort, GiveUp, makeTempDir, ServerProcess, startWithRetries, waitFor } from './child';

const ETCD_BIN = process.env.ETCD_BIN ?? 'etcd';
const HEALTHY_TIMEOUT_MS = 20_000;

export interface EtcdMember {
  readonly name: string;
  /** http://127.0.0.1:port for clients. */
  readonly clientUrl: string;
  running(): boolean;
  /** Send a signal (default SIGKILL) and wait until the process is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Graceful stop (SIGTERM). The data dir stays, so restart() rejoins with its data. */
  stop(): Promise<void>;
  /** Start again on the same ports and data dir; resolves once the process serves clients. */
  restart(): Promise<void>;
}

export interface EtcdCluster {
  readonly endpoints: string[];
  readonly members: EtcdMember[];
  /** Index in `members` of the current Raft leader (waits while an election is under way). */
  leaderIndex(timeoutMs?: number): Promise<number>;
  /** Resolves once every running member reports healthy (has a leader, serves reads). */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Kill everything and remove the temp dirs. Safe to call twice. */
  stop(): Promise<void>;
}

export interface EtcdHandle extends EtcdCluster {
  readonly endpoint: string;
}

interface MemberPorts {
  name: string;
  client: number;
  peer: number;
}

class Member implements EtcdMember {
  readonly process: ServerProcess;
  readonly clientUrl: string;

  constructor(
    readonly ports: MemberPorts,
    initialCluster: string,
    token: string,
  ) {
    this.clientUrl = `http://127.0.0.1:${ports.client}`;
    const peerUrl = `http://127.0.0.1:${ports.peer}`;
    const dir = makeTempDir(`etcd-${ports.name}`);
    const args = [
      '--name', ports.name,
      '--data-dir', `${dir}/data`,
      '--listen-client-urls', this.clientUrl,
      '--advertise-client-urls', this.clientUrl,
      '--listen-peer-urls', peerUrl,
      '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', initialCluster,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', token,
      '--logger', 'zap',
      '--log-level', 'warn',
    ];
    this.process = new ServerProcess(ETCD_BIN, () => args, dir);
  }

  get name(): string {
    return this.ports.name;
  }

  running(): boolean {
    return this.process.running();
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    return this.process.kill(signal);
  }

  stop(): Promise<void> {
    return this.process.stop();
  }

  async restart(): Promise<void> {
    await this.process.startAndWait(`etcd ${this.name} to serve clients`, () => this.serving(), HEALTHY_TIMEOUT_MS);
  }

  /** The member answers on its client port at all (it may still lack a leader). */
  async serving(): Promise<boolean> {
    if (!this.running()) throw new GiveUp(this.process.withOutput(`etcd ${this.name} exited`));
    await postJson(this.clientUrl, '/v3/maintenance/status', {});
    return true;
  }

  async healthy(): Promise<boolean> {
    if (!this.running()) throw new GiveUp(this.process.withOutput(`etcd ${this.name} exited`));
    const body = await getJson(this.clientUrl, '/health');
    return (body as { health?: unknown }).health === 'true';
  }

  async status(): Promise<{ memberId: string; leader: string }> {
    const body = (await postJson(this.clientUrl, '/v3/maintenance/status', {})) as {
      header?: { member_id?: string };
      leader?: string;
    };
    return { memberId: body.header?.member_id ?? '', leader: body.leader ?? '0' };
  }
}

class Cluster implements EtcdHandle {
  private stopped = false;

  constructor(readonly members: Member[]) {}

  get endpoints(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  get endpoint(): string {
    return this.members[0].clientUrl;
  }

  async waitHealthy(timeoutMs = HEALTHY_TIMEOUT_MS): Promise<void> {
    const running = this.members.filter((m) => m.running());
    await waitFor('etcd members to be healthy', async () => {
      const states = await Promise.all(running.map((m) => m.healthy()));
      return states.every(Boolean);
    }, timeoutMs);
  }

  async leaderIndex(timeoutMs = HEALTHY_TIMEOUT_MS): Promise<number> {
    let index = -1;
    await waitFor('an etcd Raft leader', async () => {
      index = await this.findLeader();
      return index >= 0;
    }, timeoutMs);
    return index;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all(this.members.map((m) => m.process.destroy()));
  }

  /** The leader as the running members see it: only an id they agree on and can name. */
  private async findLeader(): Promise<number> {
    const running = this.members.filter((m) => m.running());
    const statuses = await Promise.all(running.map((m) => m.status()));
    const leaders = new Set(statuses.map((s) => s.leader));
    if (leaders.size !== 1) return -1;
    const leaderId = statuses[0].leader;
    const at = statuses.findIndex((s) => s.memberId === leaderId);
    return at < 0 ? -1 : this.members.indexOf(running[at]);
  }
}

export async function startEtcd(): Promise<EtcdHandle> {
  return startEtcdCluster(1);
}

/** Start `size` members and wait until the cluster has a leader; retries on a port race. */
export async function startEtcdCluster(size = 3): Promise<EtcdHandle> {
  return startWithRetries(
    async () => new Cluster(await planMembers(size)),
    async (cluster) => {
      for (const m of cluster.members) m.process.start();
      await cluster.waitHealthy();
    },
    (cluster) => cluster.stop(),
  );
}

async function planMembers(size: number): Promise<Member[]> {
  const token = `switchboard-test-${randomBytes(6).toString('hex')}`;
  const ports: MemberPorts[] = [];
  for (let i = 0; i < size; i++) ports.push({ name: `m${i}`, client: await freePort(), peer: await freePort() });
  const initialCluster = ports.map((p) => `${p.name}=http://127.0.0.1:${p.peer}`).join(',');
  return ports.map((p) => new Member(p, initialCluster, token));
}

function getJson(base: string, path: string): Promise<unknown> {
  return requestJson(base, path, 'GET');
}

function postJson(base: string, path: string, body: unknown): Promise<unknown> {
  return requestJson(base, path, 'POST', JSON.stringify(body));
}

/** etcd's HTTP/JSON gateway: enough for health and leader checks without spawning etcdctl. */
function requestJson(base: string, path: string, method: string, body?: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(path, base), { method, timeout: 2000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (err) {
          reject(err);
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${base}${path} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}
