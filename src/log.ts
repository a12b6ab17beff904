import pino, { type Logger } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Every logger made from one root (children, and theirs), so a reload can change the level of
 * all of them: a pino child keeps the level it was made with. Found from any of them through
 * the prototype chain (a pino child is Object.create(its parent)). Weak: fastify makes a child
 * per request.
 */
const FAMILY = Symbol('switchboard-logger-family');
type Family = { root?: Logger; refs: Array<WeakRef<Logger>>; live: number };

/** pino JSON to stdout; every component takes a child logger with `component` set. */
export function createLogger(level: LogLevel = 'info', destination?: pino.DestinationStream): Logger {
  const family: Family = { refs: [], live: 0 };
  const options: pino.LoggerOptions = {
    level,
    base: { pid: process.pid },
    onChild: (child) => {
      if (makingRequestChild) return;
      family.refs.push(new WeakRef(child));
      // Forget collected children now and then: amortised O(1) per child.
      if (family.refs.length > 2 * family.live + 1024) {
        family.refs = family.refs.filter((ref) => ref.deref() !== undefined);
        family.live = family.refs.length;
      }
    },
  };
  const root = destination ? pino(options, destination) : pino(options);
  family.root = root;
  (root as Logger & { [FAMILY]?: Family })[FAMILY] = family;
  return root;
}

/** True while requestChild makes a child: pino tells onChild synchronously, from inside child(). */
let makingRequestChild = false;

/**
 * A child for one request (fastify makes one per request), left out of the family: made without
 * a level of its own, it reads its parent's through the prototype, so a reload reaches it
 * through the parent. Tracked, every request cost a WeakRef that outlived its logger until the
 * next prune: 64k of them after 100,000 registrations.
 */
export function requestChild(parent: Logger, bindings: pino.Bindings, options?: pino.ChildLoggerOptions): Logger {
  makingRequestChild = true;
  try {
    return parent.child(bindings, options);
  } finally {
    makingRequestChild = false;
  }
}

/** Sets the level of `logger`'s whole family (its root and every child still alive). */
export function setLogLevel(logger: Logger, level: LogLevel): void {
  const family = (logger as Logger & { [FAMILY]?: Family })[FAMILY];
  (family?.root ?? logger).level = level;
  for (const ref of family?.refs ?? []) {
    const child = ref.deref();
    if (child !== undefined) child.level = level;
  }
}

/** For tests and library use: drops everything. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
