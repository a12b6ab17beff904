/**
 * Runs the real `dig` (Debian dnsutils; scripts/test.sh installs it) against a server on a
 * loopback port and parses what it prints: the status, the header flags, and the records of
 * each section. Only loopback servers: tests never query anything else.
 */
import { execFile } from 'node:child_process';

export interface DigRecord {
  name: string;
  ttl: number;
  type: string;
  data: string;
}

export interface DigResult {
  status: string;
  /** Header flags: qr, aa, tc, rd, ra… */
  flags: string[];
  answer: DigRecord[];
  authority: DigRecord[];
  additional: DigRecord[];
  /** `;; MSG SIZE  rcvd: N` */
  size: number;
  /** dig's whole output, for assertion messages. */
  text: string;
}

/** `server` is host:port; `args` are dig's (name, type, +options). */
export function dig(server: string, args: string[]): Promise<DigResult> {
  const colon = server.lastIndexOf(':');
  const host = server.slice(0, colon);
  const port = server.slice(colon + 1);
  if (!host.startsWith('127.')) throw new Error(`dig is only ever pointed at loopback, not ${host}`);
  return new Promise((resolve, reject) => {
    execFile('dig', [`@${host}`, '-p', port, '+time=2', '+tries=1', ...args], { timeout: 15_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout) => {
      if (err && !stdout) reject(err);
      else resolve(parseDig(stdout));
    });
  });
}

function parseDig(text: string): DigResult {
  const result: DigResult = { status: '', flags: [], answer: [], authority: [], additional: [], size: 0, text };
  let section: 'answer' | 'authority' | 'additional' | undefined;
  for (const line of text.split('\n')) {
    const status = /status: (\w+)/.exec(line);
    if (status) result.status = status[1];
    const flags = /^;; flags: ([^;]*);/.exec(line);
    if (flags) result.flags = flags[1].trim().split(/\s+/);
    const size = /MSG SIZE\s+rcvd: (\d+)/.exec(line);
    if (size) result.size = Number(size[1]);
    const heading = /^;; (ANSWER|AUTHORITY|ADDITIONAL) SECTION:/.exec(line);
    if (heading) {
      section = heading[1].toLowerCase() as typeof section;
      continue;
    }
    if (line.trim() === '' || line.startsWith(';')) {
      if (line.trim() === '') section = undefined;
      continue;
    }
    const record = /^(\S+)\s+(\d+)\s+IN\s+(\S+)\s+(.*)$/.exec(line);
    if (record && section) result[section].push({ name: record[1], ttl: Number(record[2]), type: record[3], data: record[4].trim() });
  }
  return result;
}
