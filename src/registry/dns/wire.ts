import * as dnsPacket from 'dns-packet';
import type { Answer, Packet, Question } from 'dns-packet';

/**
 * The wire side of DNS, over dns-packet: decode a query without trusting a byte of it, and
 * encode a response within a size limit, leaving records out — and saying so with the TC bit —
 * when they do not fit (Consul drops them silently). Nothing here throws on a packet's
 * content: a query that cannot be decoded is a FORMERR (when its header can be answered at
 * all) or nothing.
 */

/** Without EDNS0 a UDP answer may not exceed 512 bytes (RFC 1035). */
export const CLASSIC_UDP_SIZE = 512;
/** What we advertise and the most we send over UDP whatever a client claims (DNS flag day 2020). */
export const MAX_UDP_SIZE = 4096;
/** A TCP message's length prefix is 16 bits. */
export const MAX_TCP_SIZE = 65535;

export type ParsedQuery =
  | { kind: 'query'; id: number; question: Question; recursionDesired: boolean; edns: { udpSize: number } | undefined; raw: Buffer }
  /** Answerable with an error code only: the header made sense, the rest did not. */
  | { kind: 'error'; id: number; rcode: 'FORMERR' | 'NOTIMP'; question?: Question }
  /** Not a query at all (a response, or less than a header): never answered, so we cannot be turned into a reflector. */
  | { kind: 'drop' };

const QR_RESPONSE = 1 << 15;

/** RFC 1035 §4.1.1 response codes (the four low bits of the flags). */
export const RCODES = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export type Rcode = keyof typeof RCODES;

export function parseQuery(raw: Buffer): ParsedQuery {
  if (raw.length < 12) return { kind: 'drop' };
  const id = raw.readUInt16BE(0);
  if ((raw.readUInt16BE(2) & QR_RESPONSE) !== 0) return { kind: 'drop' };
  let packet: Packet;
  try {
    packet = dnsPacket.decode(raw);
  } catch {
    return { kind: 'error', id, rcode: 'FORMERR' };
  }
  if ((packet as Packet & { opcode?: string }).opcode !== 'QUERY') return { kind: 'error', id, rcode: 'NOTIMP' };
  const questions = packet.questions ?? [];
  if (questions.length !== 1 || (packet.answers ?? []).length > 0) return { kind: 'error', id, rcode: 'FORMERR', question: questions[0] };
  const opt = (packet.additionals ?? []).find((r) => r.type === 'OPT') as { udpPayloadSize?: number } | undefined;
  return {
    kind: 'query',
    id,
    question: questions[0],
    recursionDesired: ((packet.flags ?? 0) & dnsPacket.RECURSION_DESIRED) !== 0,
    edns: opt === undefined ? undefined : { udpSize: clampUdpSize(opt.udpPayloadSize) },
    raw,
  };
}

function clampUdpSize(advertised: number | undefined): number {
  return Math.min(MAX_UDP_SIZE, Math.max(CLASSIC_UDP_SIZE, advertised ?? CLASSIC_UDP_SIZE));
}

export interface ResponseParts {
  id: number;
  question?: Question;
  rcode: Rcode;
  answers?: Answer[];
  authorities?: Answer[];
  additionals?: Answer[];
  /** The query had EDNS0: the response carries an OPT record too. */
  edns?: boolean;
  recursionDesired?: boolean;
  recursionAvailable?: boolean;
  authoritative?: boolean;
}

export interface EncodedResponse {
  bytes: Buffer;
  truncated: boolean;
}

/**
 * Encodes a response of at most `maxSize` bytes. When everything does not fit, the additional
 * section goes first, then answers from the end (they are in a random order already), and the
 * TC bit tells the client to ask again over TCP.
 */
export function encodeResponse(parts: ResponseParts, maxSize: number): EncodedResponse {
  const answers = parts.answers ?? [];
  const authorities = parts.authorities ?? [];
  const additionals = parts.additionals ?? [];
  const full = packetOf(parts, answers, authorities, additionals, false);
  if (dnsPacket.encodingLength(full) <= maxSize) return { bytes: dnsPacket.encode(full), truncated: false };
  // Binary search for the most answers that fit without the other sections.
  let low = 0;
  let high = answers.length;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (dnsPacket.encodingLength(packetOf(parts, answers.slice(0, mid), [], [], true)) <= maxSize) low = mid;
    else high = mid - 1;
  }
  return { bytes: dnsPacket.encode(packetOf(parts, answers.slice(0, low), [], [], true)), truncated: true };
}

function packetOf(parts: ResponseParts, answers: Answer[], authorities: Answer[], additionals: Answer[], truncated: boolean): Packet {
  let flags: number = RCODES[parts.rcode];
  if (parts.authoritative ?? true) flags |= dnsPacket.AUTHORITATIVE_ANSWER;
  if (parts.recursionDesired) flags |= dnsPacket.RECURSION_DESIRED;
  if (parts.recursionAvailable) flags |= dnsPacket.RECURSION_AVAILABLE;
  if (truncated) flags |= dnsPacket.TRUNCATED_RESPONSE;
  const opt: Answer[] = parts.edns ? [{ name: '.', type: 'OPT', udpPayloadSize: MAX_UDP_SIZE, extendedRcode: 0, ednsVersion: 0, flags: 0, options: [] } as unknown as Answer] : [];
  return {
    id: parts.id,
    type: 'response',
    flags,
    questions: parts.question ? [parts.question] : [],
    answers,
    authorities,
    additionals: [...additionals, ...opt],
  };
}
