import dgram from 'node:dgram';
import { isIP } from 'node:net';
import * as dnsPacket from 'dns-packet';
import type { Question } from 'dns-packet';
import { listenTarget } from '../../config/schema';

/**
 * Names outside our zones, forwarded to the configured recursors in order (Consul's
 * `recursors`): the client's query goes out as it came, from a fresh socket on a random port,
 * and the first well-formed answer to that very question — from that very recursor — comes
 * back as it is. Without recursors such names are REFUSED by the server: we are never an
 * open resolver.
 */
export class Recursors {
  private readonly targets: Array<{ host: string; port: number }>;

  constructor(
    recursors: readonly string[],
    private readonly timeoutMs: number,
  ) {
    this.targets = recursors.map((r) => listenTarget(r, 'dns.recursors'));
  }

  get enabled(): boolean {
    return this.targets.length > 0;
  }

  /** The first recursor's answer, or undefined when none answered in time. */
  async resolve(query: Buffer, question: Question): Promise<Buffer | undefined> {
    for (const target of this.targets) {
      const answer = await askOne(target, query, question, this.timeoutMs);
      if (answer !== undefined) return answer;
    }
    return undefined;
  }
}

function askOne(target: { host: string; port: number }, query: Buffer, question: Question, timeoutMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket(isIP(target.host) === 6 ? 'udp6' : 'udp4');
    const done = (answer: Buffer | undefined): void => {
      clearTimeout(timer);
      socket.close();
      resolve(answer);
    };
    const timer = setTimeout(done, timeoutMs, undefined);
    socket.on('error', () => done(undefined));
    socket.on('message', (message, from) => {
      if (from.port !== target.port || from.address !== target.host) return;
      if (answers(message, query.readUInt16BE(0), question)) done(message);
    });
    socket.send(query, target.port, target.host);
  });
}

/** A response with the query's id to the same question (anything else is ignored, not trusted). */
function answers(message: Buffer, id: number, question: Question): boolean {
  try {
    const packet = dnsPacket.decode(message);
    const asked = packet.questions?.[0];
    return packet.type === 'response' && packet.id === id && asked !== undefined && asked.type === question.type && asked.name.toLowerCase() === question.name.toLowerCase();
  } catch {
    return false;
  }
}
