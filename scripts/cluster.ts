/**
 * `npm run cluster`: Switchboard's distributed mode on loopback, the way to try it. Starts a
 * 3-member etcd cluster, redis-server, two `switchboard registry` processes over etcd, two
 * `switchboard proxy` processes and a few demo services registered with TTL checks (and
 * heartbeated), all on free 127.0.0.1 ports; prints where everything listens with commands
 * to try, and tears it all down on Ctrl-C or SIGTERM.
 *
 *   node dist/scripts/cluster.js           run until Ctrl-C
 *   node dist/scripts/cluster.js --tls     the same with every HTTP listener on HTTPS: a CA made
 *                                          with `openssl` issues their certificate, proxies and
 *                                          the demo services trust it
 *   node dist/scripts/cluster.js --smoke   start, check a request through every proxy, stop (exit 0/1)
 *
 * Needs `etcd` and `redis-server` on the PATH (ETCD_BIN / REDIS_SERVER_BIN override them), and
 * `openssl` for --tls.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { TestCA } from '../test/helpers/certs';
import { makeTempDir, waitFor } from '../test/helpers/child';
import { Topology, leaderOf, servedBy } from '../test/helpers/distributed';
import { DemoBackends, type DemoInstance } from './demo-backends';

const SMOKE_TIMEOUT_MS = 60_000;

interface Cluster {
  topology: Topology;
  demo: DemoBackends;
  logDir: string;
  /** With --tls: the CA file every listener's certificate chains to. */
  caFile?: string;
}

async function startCluster(tls: boolean): Promise<Cluster> {
  const logDir = makeTempDir('cluster-logs');
  // A bus key, as a real deployment should have: signed messages that carry the changes.
  const key = [`--redis-key=${randomBytes(24).toString('hex')}`];
  // The certificates live beside the logs, so the curl lines printed below can name the CA.
  const ca = tls ? TestCA.create('switchboard-cluster-ca', logDir) : undefined;
  const topology = await Topology.start({ etcdMembers: 3, registries: 2, proxies: 2, logDir, channel: 'switchboard:catalog', prefix: 'switchboard/', registryArgs: key, proxyArgs: key, tls: ca });
  try {
    const demo = await DemoBackends.start(() => topology.registries.filter((r) => r.running()));
    return { topology, demo, logDir, caFile: ca?.certFile };
  } catch (err) {
    await topology.stop();
    throw err;
  }
}

async function stopCluster(cluster: Cluster, keepLogs: boolean): Promise<void> {
  await cluster.demo.stop();
  await cluster.topology.stop();
  if (!keepLogs) rmSync(cluster.logDir, { recursive: true, force: true });
}

function summary({ topology, demo, logDir, caFile }: Cluster, leader: string): string {
  const [r1, r2] = topology.registries;
  const [p1, p2] = topology.proxies;
  const byService = new Map<string, DemoInstance[]>();
  for (const i of demo.instances) byService.set(i.service, [...(byService.get(i.service) ?? []), i]);
  const services = [...byService].map(([s, list]) => `${s}: ${list.map((i) => `${i.id} (127.0.0.1:${i.port})`).join(', ')}`);
  const registryLine = (n: number, r: typeof r1): string =>
    `  registry ${n}  API ${r.url('api', '')}  admin ${r.url('admin', '')}  pid ${r.pid}${r.address('api') === leader ? '  (leader)' : ''}`;
  const proxyLine = (n: number, p: typeof p1): string => `  proxy ${n}     ${p.url('proxy', '')}  admin ${p.url('admin', '')}  pid ${p.pid}`;
  const curl = caFile === undefined ? 'curl' : `curl --cacert ${caFile}`;
  return [
    '',
    'Switchboard distributed mode is running on loopback. Ctrl-C stops everything.',
    '',
    `  etcd        ${topology.etcd.endpoints.join(' ')}  (3 members, key prefix ${topology.prefix})`,
    `  redis       ${topology.redis.url}  (channel ${topology.channel})`,
    registryLine(1, r1),
    registryLine(2, r2),
    proxyLine(1, p1),
    proxyLine(2, p2),
    `  services    ${services.join('; ')}`,
    `              TTL checks of ${demo.ttlSeconds}s, heartbeated every ${(demo.ttlSeconds / 3).toFixed(1)}s`,
    `  logs        ${logDir}`,
    ...(caFile === undefined ? [] : [`  tls         every listener above serves a certificate for 127.0.0.1 and localhost from the CA ${caFile}`]),
    '',
    'Try:',
    `  ${curl} -H 'Host: users.svc' ${p1.url('proxy', '/hello')}            # by Host: <service>.svc`,
    `  ${curl} ${p2.url('proxy', '/orders/42')}                          # by path: /<service>/...`,
    `  ${curl} ${r2.url('api', '/v1/health/service/users?passing')}     # Consul API, any registry`,
    `  ${curl} ${r2.url('api', '/v1/status/leader')}`,
    `  ${curl} -X PUT ${r2.url('api', '/v1/agent/service/register')} -d '{"ID":"users-9","Name":"users","Address":"127.0.0.1","Port":${demo.instances[0].port}}'`,
    `  ${curl} ${p1.url('admin', '/catalog')}                           # the catalog proxy 1 routes on`,
    `  ${curl} ${p1.url('admin', '/metrics')}`,
    `  kill -9 ${r1.pid}     # the leader registry dies: registry 2 takes over within a few seconds`,
    '',
  ].join('\n');
}

/** A request through every proxy to every demo service reaches one of its instances; with --tls every listener says https. */
async function smokeCheck({ topology, demo, caFile }: Cluster): Promise<void> {
  if (caFile !== undefined) {
    const listeners = [...topology.registries.flatMap((r) => [r.url('api', ''), r.url('admin', '')]), ...topology.proxies.flatMap((p) => [p.url('proxy', ''), p.url('admin', '')])];
    const plain = listeners.filter((url) => !url.startsWith('https://'));
    if (plain.length > 0) throw new Error(`--tls, yet these listeners serve plain HTTP: ${plain.join(' ')}`);
  }
  for (const proxy of topology.proxies) {
    for (const service of new Set(demo.instances.map((i) => i.service))) {
      const ids = demo.instances.filter((i) => i.service === service).map((i) => i.id);
      await waitFor(`${proxy.url('proxy', '')} to route ${service}`, async () => ids.includes((await servedBy(proxy, service)) ?? ''), 15_000);
    }
  }
}

function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
}

async function main(): Promise<number> {
  const smoke = process.argv.includes('--smoke');
  const tls = process.argv.includes('--tls');
  if (smoke) setTimeout(() => fail(new Error(`smoke check did not finish within ${SMOKE_TIMEOUT_MS} ms`)), SMOKE_TIMEOUT_MS).unref();
  // Until the cluster is up a signal must still clean up: the helpers kill their children on exit.
  const early = (): void => process.exit(130);
  process.once('SIGINT', early).once('SIGTERM', early);
  process.stdout.write(`starting 3 etcd members, redis-server, 2 registries, 2 proxies and demo services${tls ? ', every HTTP listener on HTTPS' : ''}...\n`);
  const cluster = await startCluster(tls);
  process.off('SIGINT', early).off('SIGTERM', early);
  try {
    const leader = await leaderOf(cluster.topology.registries[1]);
    if (smoke) {
      await smokeCheck(cluster);
      process.stdout.write(`smoke check passed: every proxy routes every demo service (leader ${leader}${tls ? ', every listener on HTTPS' : ''})\n`);
      return 0;
    }
    process.stdout.write(`${summary(cluster, leader)}\n`);
    const signal = await waitForSignal();
    process.stdout.write(`\n${signal}: stopping everything (logs kept in ${cluster.logDir})\n`);
    return 0;
  } finally {
    await stopCluster(cluster, !smoke);
  }
}

function fail(err: unknown): void {
  process.stderr.write(`cluster: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}

main().then((code) => process.exit(code), fail);
