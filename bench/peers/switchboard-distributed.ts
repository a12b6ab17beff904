/**
 * Switchboard in distributed mode as a peer, with the topology of `npm run cluster`: a 3-member
 * etcd cluster, redis-server, two `switchboard registry --store etcd` processes and two
 * `switchboard proxy --registry … --redis …` processes, every one on free loopback ports
 * (test/helpers/distributed.ts starts them, as it does for the fault tests). Load goes to the
 * first proxy; scenarios register through the registries in turn and may watch every proxy.
 * Each proxy is one process (`--workers=1`), like the proxy inside `switchboard all`, so that
 * the modes differ only in how a change travels: etcd, the leader registry, Redis.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Topology } from '../../test/helpers/distributed';
import { runToCompletion } from '../child';
import { monotonicMs } from '../clock';
import { RegistryClient } from '../registry-client';
import { APP_HOST, APP_SERVICE, type PeerContext } from './peer';
import { waitUntilRouted } from './routed';
import type { SwitchboardPeer } from './switchboard';

export const DISTRIBUTED_TOPOLOGY = { etcdMembers: 3, registries: 2, proxies: 2 } as const;
const BIN = path.resolve(__dirname, '..', '..', '..', 'bin', 'switchboard.js');

export interface DistributedSwitchboardPeer extends SwitchboardPeer {
  /** The processes behind the peer, for scenarios that kill some (failover). */
  readonly topology: Topology;
}

export function isDistributed(sb: SwitchboardPeer): sb is DistributedSwitchboardPeer {
  return 'topology' in sb;
}

/** Tools to find on PATH (or install); ETCD_BIN / REDIS_SERVER_BIN point elsewhere, as in the test helpers. */
export function distributedNeeds(): string[] {
  return [...(process.env.ETCD_BIN ? [] : ['etcd']), ...(process.env.REDIS_SERVER_BIN ? [] : ['redis-server'])];
}

export function describeTopology(): string {
  const t = DISTRIBUTED_TOPOLOGY;
  return `${t.etcdMembers} etcd members, Redis, ${t.registries} registries, ${t.proxies} proxies`;
}

function peerOf(topology: Topology, startupMs: number): DistributedSwitchboardPeer {
  const registries = topology.registries.map((r) => new RegistryClient(r.url('api', '')));
  const proxy = topology.proxies[0];
  return {
    name: 'switchboard',
    baseUrl: proxy.url('proxy', ''),
    host: APP_HOST,
    pid: proxy.pid,
    apiUrl: topology.registries[0].url('api', ''),
    adminUrl: proxy.url('admin', ''),
    registry: registries[0],
    registries,
    proxyUrls: topology.proxies.map((p) => p.url('proxy', '')),
    startupMs,
    topology,
    stop: async () => {
      for (const r of registries) r.close();
      await topology.stop();
    },
  };
}

/**
 * `--workers=1` where the CLI has the flag (a CLI from before `--workers` runs one process
 * anyway), and a bus key for registries and proxies alike where it has `--redis-key` (signed
 * messages that carry the changes: the recommended setup; an older CLI runs without).
 */
async function versionArgs(): Promise<{ registryArgs: string[]; proxyArgs: string[] }> {
  const help = (await runToCompletion(process.execPath, [BIN, 'proxy', '--help'], 10_000)).stdout;
  const key = help.includes('--redis-key') ? [`--redis-key=${randomBytes(24).toString('hex')}`] : [];
  return { registryArgs: key, proxyArgs: [...key, ...(help.includes('--workers') ? ['--workers=1'] : [])] };
}

/** Start the topology and route `app` through every proxy. */
export async function startDistributedSwitchboard(ctx: PeerContext): Promise<DistributedSwitchboardPeer> {
  const startedAt = monotonicMs();
  ctx.log(`  starting ${describeTopology()} ...`);
  const topology = await Topology.start({ ...DISTRIBUTED_TOPOLOGY, ...(await versionArgs()) });
  const peer = peerOf(topology, monotonicMs() - startedAt);
  try {
    await peer.registry.register({ id: 'app-1', service: APP_SERVICE, port: ctx.backends.appPort });
    for (const url of peer.proxyUrls) await waitUntilRouted(url, APP_HOST);
    return peer;
  } catch (err) {
    await peer.stop();
    throw err;
  }
}
