import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, loadConfig, type Role } from './config/load';
import { CONFIG_ENV, SETTINGS, defaultText, envName } from './config/settings';
import type { SwitchboardConfig } from './config/types';
import { isSwitchboardError } from './errors';
import { createLogger, type Logger } from './log';
import type { RunningRole, Stoppable } from './roles/lifecycle';
import { installCrashHandlers, onStopSignals } from './roles/process-handlers';

/**
 * `switchboard <role> [flags]`. Exit codes: 0 after a clean shutdown, 2 for anything wrong
 * with the invocation or the configuration (one line on stderr naming source, field and
 * reason), 1 when starting or running failed (busy port, locked data dir, crash).
 */

interface RoleSpec {
  summary: string;
  /** `load` reads the configuration again as at start (reloads). */
  start(config: Readonly<SwitchboardConfig>, logger: Logger, load: () => Readonly<SwitchboardConfig>): Promise<Stoppable & { reload?: RunningRole<unknown>['reload'] }>;
}

// Each role: its one-line summary for --help, and how it starts.
// The roles themselves live in src/roles/, one file each.
const ROLES: Partial<Record<Role, RoleSpec>> = {
  all: {
    summary: 'registry API + proxy + admin in one process; embedded store in --data-dir, in-process bus',
    // Loaded on use: --help and invalid input answer without loading fastify, pino streams…
    start: async (config, logger, load) => (await import('./roles/all')).startAll(config, logger, load),
  },
  registry: {
    summary: 'registry API over --store embedded|etcd; the elected leader publishes catalog changes to Redis',
    start: async (config, logger) => (await import('./roles/registry')).startRegistry(config, logger),
  },
  proxy: {
    summary: 'data plane: syncs its catalog from --registry URLs, hears changes on Redis, keeps routing when they are down',
    start: async (config, logger, load) => (await import('./roles/proxy')).startProxy(config, logger, load),
  },
  register: {
    summary: 'sidecar: registers one instance with a TTL check, heartbeats it, deregisters it on SIGTERM/SIGINT',
    start: async (config, logger) => (await import('./roles/register')).startRegister(config, logger),
  },
};

const EXIT_USAGE = 2;
const EXIT_FAILURE = 1;

export function main(argv: string[]): void {
  run(argv).catch((err: unknown) => {
    process.stderr.write(`switchboard: ${describeError(err)}\n`);
    process.exit(isSwitchboardError(err, 'config_invalid') ? EXIT_USAGE : EXIT_FAILURE);
  });
}

async function run(argv: string[]): Promise<void> {
  const [roleName, ...rest] = argv;
  if (roleName === '--help' || roleName === '-h' || roleName === 'help') return exitWith(0, globalHelp(), 'stdout');
  if (roleName === undefined || roleName.startsWith('-')) return exitWith(EXIT_USAGE, globalHelp(), 'stderr');
  const role = roleName as Role;
  const spec = ROLES[role];
  if (!spec) {
    return exitWith(EXIT_USAGE, `switchboard: unknown role "${roleName}" (roles: ${Object.keys(ROLES).join(', ')})\n`, 'stderr');
  }
  const parsed = parseFlags(role, rest);
  if (parsed.help) return exitWith(0, roleHelp(role, spec), 'stdout');

  const insecure = insecureParserSource();
  if (insecure !== undefined) {
    return exitWith(EXIT_USAGE, `switchboard: refusing to run with --insecure-http-parser (${insecure}): it lets malformed requests and responses through the proxy\n`, 'stderr');
  }
  const { config: file, ...flags } = parsed.values;
  // Read again, the same way, by a reload (SIGHUP, POST /reload on the admin listener).
  const load = (): Readonly<SwitchboardConfig> => loadConfig({ file: file ?? process.env[CONFIG_ENV], env: process.env, flags });
  const config = load();
  const logger = createLogger(config.logLevel);
  installCrashHandlers(logger);
  const running = await spec.start(config, logger.child({ role }), load);
  stopOnSignals(running, logger);
  const reload = running.reload;
  process.on('SIGHUP', () => {
    // Never the default action (exit): a role that cannot reload says so and keeps running.
    if (reload === undefined) logger.warn({ role }, 'SIGHUP: this role does not reload its configuration live; restart it to apply changes');
    else void Promise.resolve(reload()).catch((err: unknown) => logger.error({ err }, 'reload failed'));
  });
}

/**
 * node's lenient HTTP parser accepts what request smuggling is made of (bare LF, bad
 * Transfer-Encoding, spaces in header names): a proxy must never run with it.
 */
function insecureParserSource(): string | undefined {
  if (process.execArgv.includes('--insecure-http-parser')) return 'node flag';
  if (/(^|\s)--insecure-http-parser(\s|$)/.test(process.env.NODE_OPTIONS ?? '')) return 'NODE_OPTIONS';
  return undefined;
}

interface ParsedFlags {
  help: boolean;
  values: Record<string, string | undefined>;
}

function parseFlags(role: Role, args: string[]): ParsedFlags {
  const options: NonNullable<ParseArgsConfig['options']> = {
    help: { type: 'boolean', short: 'h' },
    config: { type: 'string' },
  };
  for (const s of settingsOf(role)) options[s.flag] = { type: 'string' };
  try {
    const { values } = parseArgs({ args, options, strict: true, allowPositionals: false });
    const { help, ...rest } = values;
    return { help: help === true, values: rest as Record<string, string | undefined> };
  } catch (err) {
    throw usageError(err, role);
  }
}

/** parseArgs' messages are long and generic; say which flag and what is wrong, in one line. */
function usageError(err: unknown, role: Role): ConfigError {
  const code = (err as NodeJS.ErrnoException).code;
  const message = (err as Error).message;
  const flag = /'(-[^' ]+)/.exec(message)?.[1] ?? '(flags)';
  const hint = `see switchboard ${role} --help`;
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return new ConfigError(`flag ${flag}`, '(flag)', `unknown flag (${hint})`);
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return new ConfigError(`flag ${flag}`, '(flag)', `needs a value (${hint})`);
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return new ConfigError('arguments', '(flag)', `unexpected argument ${/'([^']*)'/.exec(message)?.[1] ?? ''} (${hint})`);
    default:
      return new ConfigError('arguments', '(flag)', message);
  }
}

function settingsOf(role: Role): typeof SETTINGS {
  return SETTINGS.filter((s) => s.roles.includes(role));
}

function globalHelp(): string {
  const roles = Object.entries(ROLES).map(([name, spec]) => `  ${name.padEnd(10)} ${spec?.summary}`);
  const roleNames = Object.keys(ROLES) as Role[];
  const flags = SETTINGS.filter((s) => roleNames.some((r) => s.roles.includes(r)));
  return [
    'Usage: switchboard <role> [flags]',
    '',
    'Service discovery: a Consul-compatible registry and a proxy that routes by service name.',
    '',
    'Roles:',
    ...roles,
    '',
    ...flagHelp(flags),
    '',
    'Run `switchboard <role> --help` for the flags of one role.',
    '',
  ].join('\n');
}

function roleHelp(role: Role, spec: RoleSpec): string {
  return [`Usage: switchboard ${role} [flags]`, '', spec.summary, '', ...flagHelp(settingsOf(role)), ''].join('\n');
}

function flagHelp(settings: typeof SETTINGS): string[] {
  const rows: Array<[string, string]> = [
    ['--config FILE', `config file (.yaml, .yml or .json) [env ${CONFIG_ENV}]`],
    ...settings.map((s): [string, string] => [`--${s.flag} ${s.arg ?? placeholder(s.type)}`, `${s.help} (default ${defaultText(s.node)}) [env ${envName(s)}]`]),
    ['-h, --help', 'show this help'],
  ];
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  return [
    'Flags (precedence: config file < SWITCHBOARD_* environment < flags):',
    ...rows.map(([left, right]) => `  ${left.padEnd(width)}${right}`),
  ];
}

function placeholder(type: (typeof SETTINGS)[number]['type']): string {
  return { string: 'VALUE', integer: 'N', boolean: 'true|false', duration: 'DURATION', list: 'A,B' }[type];
}

function exitWith(code: number, text: string, stream: 'stdout' | 'stderr'): void {
  process[stream].write(text, () => process.exit(code));
}

/** SIGTERM/SIGINT: drain and stop cleanly (exit 0); a second signal means "now" (exit 1). */
function stopOnSignals(running: Stoppable, logger: Logger): void {
  onStopSignals(logger, 'shutdown', (signal) => {
    logger.info({ signal }, 'shutting down');
    running.stop().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(EXIT_FAILURE);
      },
    );
  });
}

function describeError(err: unknown): string {
  // ConfigError included: its code is config_invalid.
  if (isSwitchboardError(err, 'config_invalid')) return `invalid configuration: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}
