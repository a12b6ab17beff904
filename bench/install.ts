/**
 * Installs the comparison tools (nginx, HAProxy, wrk) and what distributed mode runs on (etcd,
 * redis-server) from Debian packages when they are missing and we are root; otherwise the
 * harness skips what is missing and says so.
 */
import { hasCommand, runToCompletion } from './child';

const PACKAGE_OF: Record<string, string> = { nginx: 'nginx-light', haproxy: 'haproxy', wrk: 'wrk', etcd: 'etcd-server', 'redis-server': 'redis-server', valgrind: 'valgrind', callgrind_control: 'valgrind' };

export interface InstallOutcome {
  /** Tools on PATH after this call. */
  available: Set<string>;
  /** Tool → why it is not available. */
  missing: Map<string, string>;
}

async function aptInstall(packages: string[], log: (line: string) => void): Promise<string | undefined> {
  log(`installing ${packages.join(' ')} (apt-get) ...`);
  const env = 'DEBIAN_FRONTEND=noninteractive';
  const update = await runToCompletion('sh', ['-c', `${env} apt-get update -qq`], 300_000);
  if (update.code !== 0) return `apt-get update failed: ${update.stderr.trim().split('\n').pop() ?? ''}`;
  const install = await runToCompletion('sh', ['-c', `${env} apt-get install -y -qq ${packages.join(' ')}`], 600_000);
  if (install.code !== 0) return `apt-get install failed: ${install.stderr.trim().split('\n').pop() ?? ''}`;
  return undefined;
}

export async function ensureTools(tools: string[], allowInstall: boolean, log: (line: string) => void): Promise<InstallOutcome> {
  const available = new Set<string>();
  const absent: string[] = [];
  for (const tool of new Set(tools)) {
    if (await hasCommand(tool)) available.add(tool);
    else absent.push(tool);
  }
  const missing = new Map<string, string>();
  if (absent.length === 0) return { available, missing };

  const isRoot = process.getuid?.() === 0;
  const canInstall = allowInstall && isRoot && (await hasCommand('apt-get'));
  if (!canInstall) {
    const why = !allowInstall ? 'installing was turned off (--no-install)' : 'not root or no apt-get';
    for (const tool of absent) missing.set(tool, `${tool} is not installed and ${why}: apt-get install -y ${PACKAGE_OF[tool] ?? tool}`);
    return { available, missing };
  }
  const failure = await aptInstall(absent.map((t) => PACKAGE_OF[t] ?? t), log);
  for (const tool of absent) {
    if (await hasCommand(tool)) available.add(tool);
    else missing.set(tool, failure ?? `${tool} is still missing after apt-get install`);
  }
  return { available, missing };
}
