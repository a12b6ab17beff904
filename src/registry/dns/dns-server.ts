import dgram from 'node:dgram';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { SwitchboardConfig } from '../../config/types';
import { listenTarget } from '../../config/schema';
import type { Logger } from '../../log';
import { counter, histogram } from '../../metrics';
import { realScheduler, type Scheduler } from '../../clock';
import { TokenBuckets } from '../token-buckets';
import { buildAnswer, type CatalogReader, type DnsAnswerConfig, type Node, type QueryType } from './answers';
import { parseQueryName, type NameRules } from './names';
import { Recursors } from './recursor';
import { CLASSIC_UDP_SIZE, MAX_TCP_SIZE, encodeResponse, parseQuery, type ResponseParts } from './wire';

/**
 * The registry's DNS interface: UDP and TCP on one port, answering Consul's query forms from
 * the registry's catalog view (names.ts → answers.ts → wire.ts). Every packet is hostile until
 * decoded: anything that is not a query is dropped unanswered, an undecodable query gets
 * FORMERR, and nothing a packet contains can throw out of here. Each source address has a
 * rate limit; TCP connections have a size-bounded frame buffer and an idle timeout.
 */

export type DnsConfig = SwitchboardConfig['dns'];

export interface DnsServerOptions {
  config: Readonly<DnsConfig>;
  catalog: CatalogReader;
  datacenter: string;
  /** The virtual node `<node>.node.<domain>` answers for. */
  node: () => Node;
  /** False while the store is unreachable: answers are then stale (bounded by maxStale). */
  storeHealthy?: () => boolean;
  logger: Logger;
  /** Times how long the store has been unreachable; a fake one in tests. */
  clock?: Pick<Scheduler, 'now'>;
}

/** A TCP client that sends nothing for this long is disconnected. */
const TCP_IDLE_MS = 10_000;
/** Concurrent TCP connections to the DNS port. */
const MAX_TCP_CONNECTIONS = 512;
/** Queries one TCP connection may have waiting for their answers (pipelined). */
const MAX_TCP_PENDING = 128;
/** Answers a client leaves unread before it is disconnected. */
const MAX_TCP_UNREAD = 1024 * 1024;
const KNOWN_QTYPES = new Set(['A', 'AAAA', 'SRV', 'ANY', 'SOA', 'NS', 'CNAME', 'TXT', 'PTR']);

const queriesTotal = counter('switchboard_dns_queries_total', 'DNS queries answered, by question type and response code.', ['qtype', 'rcode', 'transport']);
const truncatedTotal = counter('switchboard_dns_truncated_total', 'DNS answers that left records out (TC bit set).', ['transport']);
const droppedTotal = counter('switchboard_dns_dropped_total', 'DNS packets not answered: not a query, over the rate limit, or a broken TCP frame.', ['reason']);
const staleTotal = counter('switchboard_dns_stale_answers_total', "DNS answers given from this registry's view while its store was unreachable.");
const queryDuration = histogram('switchboard_dns_query_duration_seconds', 'Time to answer a DNS query (forwarded ones included).', ['transport'], [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 5]);

type Transport = 'udp' | 'tcp';

export class DnsServer {
  private readonly log: Logger;
  private readonly rules: NameRules;
  private readonly answerConfig: DnsAnswerConfig;
  private readonly recursors: Recursors;
  private readonly limiter: TokenBuckets | undefined;
  private readonly clock: Pick<Scheduler, 'now'>;
  private udp: dgram.Socket | undefined;
  private tcp: net.Server | undefined;
  private readonly connections = new Set<net.Socket>();
  private unhealthySince: number | undefined;
  private bound = '';

  constructor(private readonly options: DnsServerOptions) {
    const { config } = options;
    this.log = options.logger.child({ component: 'dns' });
    this.clock = options.clock ?? realScheduler;
    this.rules = { domains: [config.domain, config.altDomain].filter((d) => d !== '').map((d) => d.toLowerCase()), datacenter: options.datacenter };
    this.answerConfig = {
      serviceTtl: Math.floor(config.serviceTtl / 1000),
      nodeTtl: Math.floor(config.nodeTtl / 1000),
      negativeTtl: Math.floor(config.negativeTtl / 1000),
      onlyPassing: config.onlyPassing,
      datacenter: options.datacenter,
    };
    this.recursors = new Recursors(config.recursors, config.recursorTimeout);
    this.limiter = config.rateLimit > 0 ? new TokenBuckets(config.rateLimit, config.rateLimit) : undefined;
  }

  /** host:port both listeners are bound to; '' before start. */
  get address(): string {
    return this.bound;
  }

  /**
   * Binds UDP, then TCP on the same port. With port 0 the port is the one UDP got; if that
   * port is taken for TCP (the two namespaces are separate), another is tried.
   */
  async start(): Promise<void> {
    const { host, port } = listenTarget(this.options.config.listen, 'dns.listen');
    for (let attempt = 1; ; attempt++) {
      const udp = await this.bindUdp(host, port);
      const boundPort = udp.address().port;
      try {
        this.tcp = await this.bindTcp(host, boundPort);
        this.udp = udp;
        this.bound = net.isIPv6(host) ? `[${host}]:${boundPort}` : `${host}:${boundPort}`;
        return;
      } catch (err) {
        udp.close();
        if (port !== 0 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 20) throw err;
      }
    }
  }

  private async bindUdp(host: string, port: number): Promise<dgram.Socket> {
    const udp = dgram.createSocket({ type: net.isIPv6(host) ? 'udp6' : 'udp4' });
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(port, host, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    udp.on('message', (message, from) => this.onDatagram(udp, message, from));
    udp.on('error', (err) => this.log.error({ err }, 'DNS UDP socket error'));
    return udp;
  }

  private async bindTcp(host: string, port: number): Promise<net.Server> {
    const tcp = net.createServer((socket) => this.onConnection(socket));
    tcp.maxConnections = MAX_TCP_CONNECTIONS;
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(port, host, () => {
        tcp.off('error', reject);
        resolve();
      });
    });
    tcp.on('error', (err) => this.log.error({ err }, 'DNS TCP listener error'));
    return tcp;
  }

  async stop(): Promise<void> {
    for (const socket of this.connections) socket.destroy();
    const udp = this.udp;
    const tcp = this.tcp;
    this.udp = undefined;
    this.tcp = undefined;
    await Promise.all([
      udp ? new Promise<void>((resolve) => udp.close(() => resolve())) : undefined,
      tcp ? new Promise<void>((resolve) => tcp.close(() => resolve())) : undefined,
    ]);
  }

  /**
   * One DNS message in, at most one out (undefined: send nothing). Never throws; exported for
   * tests that feed it bytes without a socket.
   */
  async answer(raw: Buffer, source: string, transport: Transport): Promise<Buffer | undefined> {
    const started = performance.now();
    try {
      if (this.limiter !== undefined && this.limiter.take(source) > 0) {
        droppedTotal.inc({ reason: 'rate_limited' });
        return undefined;
      }
      return await this.respond(raw, transport);
    } catch (err) {
      // A bug of ours, never the packet's fault: the client gets SERVFAIL, we get the log.
      this.log.error({ err, source }, 'DNS query failed');
      const id = raw.length >= 2 ? raw.readUInt16BE(0) : 0;
      return this.encode({ id, rcode: 'SERVFAIL' }, 'other', transport, CLASSIC_UDP_SIZE);
    } finally {
      queryDuration.observe({ transport }, (performance.now() - started) / 1000);
    }
  }

  private async respond(raw: Buffer, transport: Transport): Promise<Buffer | undefined> {
    const query = parseQuery(raw);
    if (query.kind === 'drop') {
      droppedTotal.inc({ reason: 'not_a_query' });
      return undefined;
    }
    if (query.kind === 'error') return this.encode({ id: query.id, rcode: query.rcode, question: query.question }, 'other', transport, CLASSIC_UDP_SIZE);
    const { question } = query;
    const qtype = KNOWN_QTYPES.has(question.type) ? question.type : 'other';
    const maxSize = transport === 'tcp' ? MAX_TCP_SIZE : (query.edns?.udpSize ?? CLASSIC_UDP_SIZE);
    const base: ResponseParts = { id: query.id, question, rcode: 'NOERROR', edns: query.edns !== undefined, recursionDesired: query.recursionDesired, recursionAvailable: this.recursors.enabled };
    if (question.class !== 'IN' && question.class !== 'ANY') return this.encode({ ...base, rcode: 'REFUSED' }, qtype, transport, maxSize);
    const name = parseQueryName(question.name, this.rules);
    if (name.kind === 'foreign') {
      if (!this.recursors.enabled) return this.encode({ ...base, rcode: 'REFUSED', authoritative: false }, qtype, transport, maxSize);
      const forwarded = await this.recursors.resolve(raw, question);
      if (forwarded === undefined) return this.encode({ ...base, rcode: 'SERVFAIL', authoritative: false }, qtype, transport, maxSize);
      queriesTotal.inc({ qtype, rcode: 'FORWARDED', transport });
      return forwarded;
    }
    if (this.tooStale()) return this.encode({ ...base, rcode: 'SERVFAIL' }, qtype, transport, maxSize);
    const built = buildAnswer({ name: question.name, type: question.type as QueryType }, name, this.options.catalog, this.options.node(), this.answerConfig);
    return this.encode({ ...base, ...built }, qtype, transport, maxSize);
  }

  private encode(parts: ResponseParts, qtype: string, transport: Transport, maxSize: number): Buffer {
    const { bytes, truncated } = encodeResponse(parts, maxSize);
    if (truncated) truncatedTotal.inc({ transport });
    queriesTotal.inc({ qtype, rcode: parts.rcode, transport });
    return bytes;
  }

  /** While the store is unreachable answers are stale: counted, and refused after maxStale. */
  private tooStale(): boolean {
    if (this.options.storeHealthy?.() ?? true) {
      if (this.unhealthySince !== undefined) this.log.info('store reachable again: DNS answers are current');
      this.unhealthySince = undefined;
      return false;
    }
    const now = this.clock.now();
    if (this.unhealthySince === undefined) {
      this.unhealthySince = now;
      this.log.warn({ maxStale: this.options.config.maxStale }, 'store unreachable: DNS answers come from the last catalog this registry saw (stale)');
    }
    if (now - this.unhealthySince > this.options.config.maxStale) return true;
    staleTotal.inc();
    return false;
  }

  // ---- transports -------------------------------------------------------------------------

  private onDatagram(udp: dgram.Socket, message: Buffer, from: dgram.RemoteInfo): void {
    void this.answer(message, from.address, 'udp').then((response) => {
      if (response !== undefined && this.udp === udp) udp.send(response, from.port, from.address);
    });
  }

  /**
   * RFC 1035 §4.2.2 / RFC 7766: messages with a 2-byte length prefix, several per connection,
   * answered in order. A frame can never be bigger than 65,535 bytes, so neither can the buffer;
   * a client that stalls mid-frame is cut at the idle timeout.
   */
  private onConnection(socket: net.Socket): void {
    this.connections.add(socket);
    socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
    socket.on('error', () => undefined);
    socket.once('close', () => this.connections.delete(socket));
    const source = socket.remoteAddress ?? '';
    let pending: Buffer = Buffer.alloc(0);
    let queue: Promise<void> = Promise.resolve();
    let waiting = 0;
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 2) {
        const length = pending.readUInt16BE(0);
        if (length < 12) {
          droppedTotal.inc({ reason: 'bad_frame' });
          socket.destroy();
          return;
        }
        if (pending.length < 2 + length) break;
        const message = pending.subarray(2, 2 + length);
        pending = pending.subarray(2 + length);
        if (++waiting > MAX_TCP_PENDING) {
          droppedTotal.inc({ reason: 'tcp_backlog' });
          socket.destroy();
          return;
        }
        queue = queue.then(() => this.answerOnStream(socket, message, source)).finally(() => waiting--);
      }
    });
  }

  private async answerOnStream(socket: net.Socket, message: Buffer, source: string): Promise<void> {
    if (socket.destroyed) return;
    const response = await this.answer(message, source, 'tcp');
    if (response === undefined) {
      // Over the rate limit, or not a query: the connection is not worth keeping.
      socket.destroy();
      return;
    }
    if (socket.writableLength > MAX_TCP_UNREAD) {
      droppedTotal.inc({ reason: 'tcp_backlog' });
      socket.destroy();
      return;
    }
    const prefix = Buffer.alloc(2);
    prefix.writeUInt16BE(response.length);
    socket.write(Buffer.concat([prefix, response]));
  }
}
