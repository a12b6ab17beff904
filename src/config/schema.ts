import { Type, type Static, type TObject, type TSchema } from '@sinclair/typebox';
import { SwitchboardError } from '../errors';
import { LOG_LEVELS, type LogLevel } from '../log';

/**
 * The one source of Switchboard's configuration. Every setting is one node here, with its
 * type, its default, its description, and — when it can also come from a flag and an
 * environment variable — its `cli` annotation. Everything else is derived from it:
 *
 *  - the TypeScript types (`SwitchboardConfig`, `ServicePolicy`, … in types.ts) by TypeBox;
 *  - validation, defaults and coercion by Ajv (validate.ts), where the `duration` keyword
 *    turns "30s" into 30000 and `statusRange` turns "200-399" into [200, 399] while
 *    validating: the validated file *is* the runtime config, durations in milliseconds;
 *  - the flags, their environment variables and `--help` (settings.ts);
 *  - the README configuration table and config/switchboard.example.yaml (docs.ts; a test
 *    fails when the committed ones differ from what it generates).
 *
 * Modules take their slice of the validated config and hold no defaults of their own.
 */

export type Role = 'all' | 'registry' | 'proxy' | 'register';

/** Where a setting can come from besides the file. */
export interface Cli {
  /** Flag without dashes; the environment variable is SWITCHBOARD_ + it in UPPER_SNAKE. */
  flag: string;
  /** Roles that accept the flag (the environment variable is read by every role). */
  roles: readonly Role[];
  /** Placeholder in --help (default: from the type). */
  arg?: string;
  /** One line for --help (default: the description's first sentence). */
  help?: string;
}

/** Annotations of ours on a schema node (Ajv is told about each keyword in validate.ts). */
interface Annotations {
  description?: string;
  cli?: Cli;
  /** Shown commented out in the example file when the node has no default. */
  example?: string;
  /** How the default reads in docs when it is not a literal (e.g. "one per core"). */
  defaultText?: string;
  /** Sentence shown instead of Ajv's wording when the value fails this node. */
  errorReason?: string;
}

const ALL_ROLES: readonly Role[] = ['all', 'registry', 'proxy', 'register'];
const LISTENING: readonly Role[] = ['all', 'registry', 'proxy'];
const SERVING_PROXY: readonly Role[] = ['all', 'proxy'];
const SERVING_REGISTRY: readonly Role[] = ['all', 'registry'];

/**
 * Longest duration a setting may have: node fires a setTimeout of more than 2^31−1 ms after
 * 1 ms, so a "30d" interval would spin.
 */
export const MAX_DURATION_MS = 2 ** 31 - 1;

const DNS_NAME_PATTERN = '^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$';

/** Notification events (notify.webhooks[].events). */
export const NOTIFY_EVENTS = ['instance-critical', 'instance-recovered', 'service-down', 'service-up', 'instance-ejected', 'leader-change'] as const;

export const LISTEN_REASON = 'must be host:port with a port from 0 to 65535';

/** A duration: "250ms", "5s", "1m30s", "1h", or a number of milliseconds. Validated as milliseconds. */
function Duration(defaultValue: string | undefined, options: Annotations & { allowZero?: boolean } = {}) {
  const { allowZero = false, ...annotations } = options;
  return Type.Unsafe<number>({
    type: ['string', 'integer'],
    duration: allowZero ? 'non-negative' : 'positive',
    ...(defaultValue === undefined ? {} : { default: defaultValue }),
    errorReason: allowZero
      ? 'must be a duration like "10s" or "1m30s", or a number of milliseconds, at most 24 days'
      : 'must be a positive duration like "10s" or "1m30s", or a number of milliseconds, at most 24 days',
    ...annotations,
  });
}

function Listen(defaultValue: string | undefined, annotations: Annotations) {
  return Type.String({ format: 'listen', ...(defaultValue === undefined ? {} : { default: defaultValue }), errorReason: LISTEN_REASON, ...annotations });
}

/** An object whose fields all have defaults: absent means "all defaults". */
function Section<T extends Record<string, TSchema>>(properties: T, annotations: Annotations = {}) {
  return Type.Object(properties, { additionalProperties: false, default: {}, ...annotations });
}

/**
 * TLS on a listener (proxy, registry API, admin): the same shape everywhere. No certificate
 * = plain HTTP. Files are PEM, relative to the working directory, re-read when they change.
 */
function ListenerTls<T extends Record<string, TSchema>>(what: string, extra: T) {
  return Section(
    {
      certificates: Type.Array(
        Type.Object({ certFile: Type.String({ minLength: 1 }), keyFile: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
        {
          default: [],
          description:
            'PEM certificate (chain) and key files. Each certificate answers the names in its subjectAltName (exact or `*.example.com`, one label), chosen by the client\'s SNI; the first is the default, also for clients that send no SNI. Empty = no TLS.',
          example: '- { certFile: /etc/switchboard/example.com.crt, keyFile: /etc/switchboard/example.com.key }',
        },
      ),
      minVersion: Type.Union([Type.Literal('TLSv1.2'), Type.Literal('TLSv1.3')], { default: 'TLSv1.2', errorReason: 'must be TLSv1.2 or TLSv1.3' }),
      ...extra,
    },
    {
      description: `TLS for ${what}. Certificates are re-read when their files change (checked every second) and on SIGHUP or POST /reload, without touching open connections; a file that fails to load then keeps the old certificate (logged). A bad file at startup is a configuration error. File only.`,
    },
  );
}

// ---- one service's policy --------------------------------------------------------------

/**
 * `proxy.defaults` gets the policy with defaults; `proxy.services.<name>` the same nodes
 * without them, so that an override names only what it changes (merged section by section).
 */
function policyNodes(withDefaults: boolean) {
  const d = <T>(value: T): { default?: T } => (withDefaults ? { default: value } : {});
  const dur = (value: string, annotations: Annotations & { allowZero?: boolean } = {}) => Duration(withDefaults ? value : undefined, annotations);
  const int = (minimum: number, value: number, annotations: Annotations & { maximum?: number } = {}) => Type.Integer({ minimum, ...d(value), ...annotations });
  const percent = (value: number, annotations: Annotations = {}) => Type.Number({ minimum: 0, maximum: 100, ...d(value), ...annotations });
  // In an override every field of a section is optional, nested sections too.
  const part = <T extends Record<string, TSchema>>(properties: T, annotations: Annotations = {}) =>
    withDefaults
      ? Type.Object(properties, { additionalProperties: false, ...d({}), ...annotations })
      : (Type.Partial(Type.Object(properties), { additionalProperties: false, ...annotations }) as unknown as TObject<T>);
  return {
    balancer: Type.Union(
      [Type.Literal('weighted-round-robin'), Type.Literal('least-request'), Type.Literal('ring-hash'), Type.Literal('random')],
      {
        ...d('weighted-round-robin' as const),
        errorReason: 'must be one of weighted-round-robin, least-request, ring-hash, random',
        description:
          'weighted-round-robin (smooth, nginx\'s; Consul Weights), least-request (power of two choices on requests in flight per unit of weight), ring-hash (consistent hashing on `hashKey`: a key keeps its instance; removing one of N instances moves only ~1/N of the keys) or random (weighted).',
      },
    ),
    hashKey: Type.String({
      pattern: "^(ip|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+|cookie:[^\\s=;,]+)$",
      errorReason: 'must be "ip", "header:<name>" or "cookie:<name>"',
      ...d('ip'),
      description: 'What ring-hash hashes: ip (the client address), header:<name> or cookie:<name>. A request without that header or cookie goes to a random available instance.',
    }),
    slowStart: part(
      {
        window: dur('0s', { allowZero: true }),
        aggression: Type.Number({ exclusiveMinimum: 0, ...d(1) }),
        minWeightPercent: Type.Number({ exclusiveMinimum: 0, maximum: 100, ...d(10) }),
      },
      {
        description:
          'New instances, and instances returning from ejection or failed probes, get a share of their weight that grows over `window` (0 = off): max(minWeightPercent, (elapsed / window) ^ (1 / aggression)). aggression 1 is linear; higher ramps faster at first. Instances present when the proxy starts are not slowed. ring-hash ignores it.',
      },
    ),
    latencyAware: part(
      {
        enabled: Type.Boolean(d(true)),
        decay: dur('1s', { description: 'Time constant of the per-instance latency average: what an instance took more than a few `decay`s ago no longer counts.' }),
        tolerance: Type.Number({ minimum: 1, maximum: 100, ...d(1.5) }),
        minWeightPercent: Type.Number({ exclusiveMinimum: 0, maximum: 100, ...d(0.5) }),
      },
      {
        description:
          "Latency-aware weights, whatever the balancer (ring-hash excepted: a key keeps its instance): each instance's recent latency is tracked (a time-weighted moving average of its answers, timed-out tries included), and an instance slower than `tolerance` × the service's median instance (+ 2 ms, below which timings are noise), once it has given 10 answers, has its weight scaled by (allowed ÷ its latency)³, to no less than `minWeightPercent` % (so it is still sampled, and regains its share within about one `decay` once it is fast again). Consul Weights stay the upper bound. With the defaults an instance 20× slower than its peers gets about 0.25 % of a 3-instance service's requests within a couple of seconds, so the service's p99 stays near the healthy one; when every instance slows down together nothing changes.",
      },
    ),
    healthCheck: part(
      {
        enabled: Type.Boolean(d(false)),
        path: Type.String({ pattern: '^/', errorReason: 'must start with "/"', ...d('/') }),
        interval: dur('5s'),
        timeout: dur('2s'),
        healthyThreshold: int(1, 2),
        unhealthyThreshold: int(1, 3),
        expectedStatuses: Type.Array(
          Type.Unsafe<[number, number]>({
            type: ['integer', 'string'],
            statusRange: true,
            errorReason: 'must be a status code (200) or an inclusive range ("200-399") within 100-599',
          }),
          { minItems: 1, ...d(['200-399']) },
        ),
        jitter: dur('0s', { allowZero: true }),
        jitterPercent: percent(10),
        maxConcurrentProbes: int(1, 16, { description: 'Probes of this service in flight at once from one proxy.' }),
      },
      {
        description:
          "Active health checking from this proxy: GET `path` on every instance. An instance failing `unhealthyThreshold` probes in a row leaves this proxy's rotation even while the registry says passing; it returns after `healthyThreshold` passing probes in a row. A probe passes when it gets one of `expectedStatuses` (codes or \"low-high\" ranges) within `timeout`. Each instance is probed every `interval` plus a random jitter of up to `jitter` + `jitterPercent` % of the interval, so probes never line up; at most `maxConcurrentProbes` run at once.",
      },
    ),
    outlierDetection: part(
      {
        consecutive5xx: int(0, 5),
        consecutiveGatewayFailure: int(0, 3),
        baseEjectionTime: dur('30s'),
        maxEjectionTime: dur('300s'),
        maxEjectionPercent: percent(10),
        decayInterval: dur('10s', { description: "Envoy's `interval`: each one an instance behaves takes one off its count of ejections." }),
        slowFactor: Type.Number({
          minimum: 0,
          ...d(0),
          description:
            "Latency outlier rule (0 = off): an instance whose recent latency (see latencyAware) is at least `slowFactor` × the service's median instance's, over at least 20 answers, is ejected like a failing one (reason `latency`), within the same maxEjectionPercent cap and panic threshold. Off by default: latencyAware already starves a slow instance without taking it out; 10 is a reasonable value where a slow instance must get no traffic at all.",
        }),
      },
      {
        description:
          'Passive health (outlier detection) from real traffic. An instance is ejected after `consecutive5xx` 5xx answers in a row (gateway failures count too), or after `consecutiveGatewayFailure` gateway failures in a row (connection refused or reset, timeout, invalid response, 502/503/504); 0 disables either rule. It is ejected for baseEjectionTime × the number of times it was ejected (capped at maxEjectionTime; the count decays by one every `decayInterval` it behaves) and then comes back by itself. At most `maxEjectionPercent` % of a service\'s instances are ejected at once (but always at least one may be).',
      },
    ),
    panicThreshold: percent(50, {
      description:
        'Panic threshold (%): when fewer than this share of the instances the registry lists as passing are available (not ejected, not failing probes), the proxy balances over all of them rather than crush the few left. Logged and counted. 0 = never panic.',
    }),
    retries: part({
      attempts: int(0, 2, { maximum: 10, description: 'Retries after the first try, each on another instance where one is available (0 = never retry).' }),
      perTryTimeout: dur('0s', {
        allowZero: true,
        description: "Each try's deadline for the response headers (0 = none). The overall deadline, retries included, stays `timeouts.response`. Without it a hung instance is not retried.",
      }),
      retryOn: Type.Array(
        Type.Union([Type.Literal('connect-failure'), Type.Literal('reset'), Type.Literal('timeout'), Type.Literal('gateway-error'), Type.Literal('5xx')], {
          errorReason: 'must be one of connect-failure, reset, timeout, gateway-error, 5xx',
        }),
        {
          uniqueItems: true,
          ...d(['connect-failure', 'reset', 'timeout', 'gateway-error', '5xx'] as Array<'connect-failure' | 'reset' | 'timeout' | 'gateway-error' | '5xx'>),
          description:
            'Which failures are retried: connect-failure (nothing reached the upstream: refused, connect timeout; any method), reset (the connection broke after the request was sent), timeout (the per-try timeout fired), gateway-error (502, 503 or 504), 5xx (any 5xx). All but connect-failure are retried for idempotent methods only (GET, HEAD, OPTIONS, PUT, DELETE, TRACE): a POST that may have reached an upstream is never sent again. Nothing is retried once the client has received a byte of the response, nor an invalid response. 5xx is on by default so that an instance answering 500 to everything stays invisible to idempotent requests until outlier detection ejects it; leave it out if your 500s are never worth another try.',
        },
      ),
      budgetPercent: percent(20, {
        description:
          "Retry budget: retries in flight stay below max(minRetryConcurrency, budgetPercent % of the service's active requests), so retries cannot multiply an outage's load. The floor of 10 (Linkerd's; Envoy's is 3) covers the burst when an instance dies and every request in flight to it wants a retry at once.",
      }),
      minRetryConcurrency: int(0, 10),
      hedge: Type.Boolean({
        ...d(false),
        description:
          "Hedging (Envoy's hedge_on_per_try_timeout, Finagle's backup requests): when a try of an idempotent, replayable request passes its per-try (or adaptive) timeout, a second try goes to another instance while the first keeps going; the first response wins and the other try is cancelled (and counted as hung). Costs extra upstream load on slow requests (within the retry budget); cuts tail latency. Off by default.",
      }),
      adaptiveTimeout: part(
        {
          enabled: Type.Boolean(d(true)),
          floor: dur('250ms'),
          multiplier: Type.Number({ minimum: 1, maximum: 100, ...d(3) }),
          minSamples: int(1, 20),
          fallback: dur('5s'),
          decay: dur('10s'),
        },
        {
          description:
            "The adaptive per-try timeout, used when perTryTimeout is 0: each service learns what its successful attempts take (a histogram whose counts halve every `decay`), and an idempotent attempt slower than max(`floor`, `multiplier` × p99) is treated as a hang — cancelled, retried on another instance under the budget, counted as a gateway failure. Until `minSamples` responses were seen the timeout is `fallback`. 250 ms × 3 × p99: a healthy request's tail (GC pauses, a cold cache) stays well under it; a hung instance costs a client about three of its normal worst cases instead of timeouts.response.",
        },
      ),
      bufferBodyUpTo: int(0, 65536, {
        description:
          'Request bodies with a Content-Length up to this many bytes are buffered so a retry can send them again. Bigger or chunked bodies are streamed and never replayed, except when the connection failed before any of the body was read.',
      }),
    }),
    upstreamTls: part(
      {
        caFile: Type.String({ ...d(''), description: "PEM bundle of the CAs upstream certificates must chain to; empty = Node's bundled public roots." }),
        certFile: Type.String({ ...d(''), description: 'Client certificate (PEM) shown to upstreams that require mTLS; with keyFile.' }),
        keyFile: Type.String({ ...d('') }),
        serverName: Type.String({ ...d(''), description: "Name the upstream's certificate must carry (and the SNI sent); empty = the instance's address." }),
        skipVerify: Type.Boolean({
          ...d(false),
          description: 'Accept any upstream certificate, expired or self-signed. Only in `proxy.services.<name>`, never in `defaults`: it must be a decision about one service.',
        }),
      },
      {
        description:
          'How the proxy reaches instances registered with `Meta: { scheme: https }`: HTTPS, the certificate verified against `caFile` for `serverName` (or the instance address), optionally with a client certificate (mTLS). Instances without that meta are reached over plain HTTP.',
      },
    ),
    limits: part(
      { maxConcurrent: int(1, 1024), maxPending: int(0, 0), maxPendingWait: dur('1s') },
      {
        description:
          "Overload protection per service (Envoy's circuit breaker): at most `maxConcurrent` requests forwarded at once, `maxPending` more waiting up to `maxPendingWait` for a slot; beyond that the proxy answers 503 {\"error\":\"overloaded\"} with Retry-After: 1. WebSocket tunnels are not counted.",
      },
    ),
  };
}

export const ServicePolicySchema = Type.Object(policyNodes(true), {
  additionalProperties: false,
  default: {},
  description:
    'How the proxy treats a service: balancing, health, retries and limits. `defaults` applies to every service; `services.<name>` overrides any part of it for one service, section by section (`retries: { perTryTimeout: 1s }` keeps the other retry fields of `defaults`). File only (no flags).',
});

/** `proxy.services.<name>`: any subset of a policy, sections partial too. */
const overrideNodes = policyNodes(false);
export const ServicePolicyOverridesSchema = Type.Object(
  {
    balancer: Type.Optional(overrideNodes.balancer),
    hashKey: Type.Optional(overrideNodes.hashKey),
    slowStart: Type.Optional(Type.Partial(overrideNodes.slowStart, { additionalProperties: false })),
    latencyAware: Type.Optional(Type.Partial(overrideNodes.latencyAware, { additionalProperties: false })),
    healthCheck: Type.Optional(Type.Partial(overrideNodes.healthCheck, { additionalProperties: false })),
    outlierDetection: Type.Optional(Type.Partial(overrideNodes.outlierDetection, { additionalProperties: false })),
    panicThreshold: Type.Optional(overrideNodes.panicThreshold),
    retries: Type.Optional(Type.Partial(overrideNodes.retries, { additionalProperties: false })),
    limits: Type.Optional(Type.Partial(overrideNodes.limits, { additionalProperties: false })),
    upstreamTls: Type.Optional(Type.Partial(overrideNodes.upstreamTls, { additionalProperties: false })),
  },
  { additionalProperties: false },
);

const RouteRuleSchema = Type.Object(
  {
    host: Type.Optional(Type.String({ minLength: 1 })),
    prefix: Type.Optional(Type.String({ pattern: '^/', errorReason: 'must start with "/"' })),
    service: Type.String({ minLength: 1 }),
    strip: Type.Boolean({ default: false }),
  },
  { additionalProperties: false, oneOf: [{ required: ['host'] }, { required: ['prefix'] }], errorReason: 'a route needs exactly one of "host" or "prefix"' },
);

// ---- the whole file ----------------------------------------------------------------------

export const ConfigSchema = Type.Object(
  {
    logLevel: Type.Unsafe<LogLevel>({
        type: 'string',
        enum: [...LOG_LEVELS],
        default: 'info',
        errorReason: `must be one of ${LOG_LEVELS.join(', ')}`,
        description: 'Log level of the pino JSON logs on stdout.',
        cli: { flag: 'log-level', roles: ALL_ROLES, arg: 'LEVEL', help: `log level: ${LOG_LEVELS.join('|')}` },
    }),
    domain: Type.String({
      pattern: DNS_NAME_PATTERN,
      default: 'svc',
      errorReason: 'must be a DNS name like "svc" or "internal.example"',
      description: 'Host suffix for name routing: a request with `Host: users.svc` goes to service "users".',
      cli: { flag: 'domain', roles: SERVING_PROXY, arg: 'NAME', help: 'Host suffix: <service>.<domain> routes to <service>' },
    }),
    datacenter: Type.String({
      pattern: '^[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?$',
      maxLength: 63,
      default: 'dc1',
      errorReason: 'must be a name of letters, digits, "-" and "_", like "dc1"',
      description: "The datacenter the registry reports (Consul's `datacenter`): a request with `?dc=` naming another is answered 500 \"No path to datacenter\", as Consul answers.",
      cli: { flag: 'datacenter', roles: SERVING_REGISTRY, arg: 'NAME', help: 'datacenter name reported by the API and DNS' },
    }),
    nodeName: Type.String({
      pattern: '^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$',
      maxLength: 63,
      default: 'switchboard',
      errorReason: 'must be a DNS label like "switchboard"',
      description: "The Consul node every instance is listed on (/v1/catalog/nodes, `Node` fields, `<node>.node.consul` in DNS). Instances are not tied to registry processes here: any registry serves the whole catalog; the registry processes themselves are listed as members (/v1/agent/members).",
      cli: { flag: 'node-name', roles: SERVING_REGISTRY, arg: 'NAME', help: 'Consul node name the catalog is listed on' },
    }),
    dataDir: Type.String({
      minLength: 1,
      default: './data',
      description: 'Directory of the embedded store: journal, snapshot and the LOCK file that keeps a second process out. Relative to the working directory.',
      cli: { flag: 'data-dir', roles: SERVING_REGISTRY, arg: 'DIR', help: 'embedded store directory (journal, snapshot, lock)' },
    }),
    api: Section(
      {
        listen: Listen('127.0.0.1:8500', { description: "8500 is Consul's port.", cli: { flag: 'api-listen', roles: SERVING_REGISTRY, arg: 'HOST:PORT', help: 'registry API (Consul-compatible) host:port' } }),
        maxWait: Duration('10m', { description: 'Upper bound of `?wait=` on blocking queries (Consul caps at 10m).', cli: { flag: 'api-max-wait', roles: SERVING_REGISTRY, help: 'cap on ?wait= of blocking queries' } }),
        protectedMode: Type.Boolean({
          default: true,
          description:
            "Protected mode (Redis's idea): writes (registrations, deregistrations, check updates) are accepted only from loopback clients, and any other client gets 403. Turn it off only when something else (a firewall, a private network, and soon ACL tokens) keeps strangers from the API: anyone who can write can take over a service's traffic.",
          cli: { flag: 'api-protected-mode', roles: SERVING_REGISTRY, help: 'accept writes only from loopback clients' },
        }),
        allowedHosts: Type.Array(Type.String({ minLength: 1 }), {
          default: [],
          description:
            'Host names the API answers to besides IP literals and localhost (Consul\'s allowed_hosts): a request whose Host header names anything else gets 403, so a web page cannot reach the API through DNS rebinding. Add the names clients use, like consul.service.internal.',
          cli: { flag: 'api-allowed-hosts', roles: SERVING_REGISTRY, arg: 'NAME[,NAME...]', help: 'Host names the API answers to besides IP literals and localhost' },
        }),
        maxConnsPerClient: Type.Integer({
          minimum: 1,
          default: 200,
          description: "Open connections one client address may hold (Consul's http_max_conns_per_client); more are answered 429 and closed.",
          cli: { flag: 'api-max-conns-per-client', roles: SERVING_REGISTRY, help: 'open connections per client address (429 beyond)' },
        }),
        writeRateLimit: Type.Number({
          minimum: 0,
          default: 0,
          description:
            'Writes per second one client may make (a token bucket per token, or per address without one); beyond it 429 with Retry-After. 0, the default, is no limit: set it where many clients share the API, e.g. 50.',
          cli: { flag: 'api-write-rate-limit', roles: SERVING_REGISTRY, help: 'writes per second per client (0 = no limit)' },
        }),
        writeBurst: Type.Integer({
          minimum: 1,
          default: 100,
          description: 'Writes a client may make at once before writeRateLimit paces it.',
          cli: { flag: 'api-write-burst', roles: SERVING_REGISTRY, help: 'writes a client may make at once before the rate limit applies' },
        }),
        maxBlockingQueriesPerClient: Type.Integer({
          minimum: 1,
          default: 256,
          description: 'Blocking queries (?index=) one client address may have waiting at once; more are answered 429.',
          cli: { flag: 'api-max-blocking-queries-per-client', roles: SERVING_REGISTRY, help: 'blocking queries waiting at once per client address' },
        }),
        requestTimeout: Duration('10s', {
          description: 'A client must send its whole request (headers and body) within this, or it is answered 408 and disconnected: a body dripped a byte a second is cut.',
          cli: { flag: 'api-request-timeout', roles: SERVING_REGISTRY, help: 'clients must send their whole request within this' },
        }),
        tls: ListenerTls('the registry API (and the web UI on it)', {}),
        advertise: Type.Optional(
          Type.String({
            format: 'listen',
            errorReason: LISTEN_REASON,
            example: '10.0.0.4:8500',
            defaultText: 'the address it binds',
            description: '`switchboard registry`: the host:port other processes use to reach this API (what /v1/status/leader reports). Set it when binding 0.0.0.0.',
            cli: { flag: 'advertise', roles: ['registry'], arg: 'HOST:PORT', help: 'host:port other processes use to reach this API' },
          }),
        ),
      },
      { description: 'Registry API (Consul-compatible: point Consul clients here).' },
    ),
    registry: Section({
      deniedTargets: Type.Array(Type.String({ format: 'cidr', errorReason: 'must be an IP address or CIDR, like "169.254.0.0/16"' }), {
        default: ['169.254.0.0/16', 'fe80::/10'],
        description:
          "Addresses no registration may point the proxy at and no check may probe (CIDRs). The link-local ranges (cloud metadata services live there) are denied by default, and so are this process's own listeners (the API, proxy and admin ports) whatever form names them. Loopback stays allowed so that the quick start works; in production add 127.0.0.0/8 and ::1/128 here, or list what is allowed in allowedTargets.",
        cli: { flag: 'denied-targets', roles: SERVING_REGISTRY, arg: 'CIDR[,CIDR...]', help: 'addresses registrations and checks may not target' },
      }),
      allowedTargets: Type.Array(Type.String({ format: 'cidr', errorReason: 'must be an IP address or CIDR, like "10.0.0.0/8"' }), {
        default: [],
        description:
          'When not empty, the only addresses registrations and checks may target (CIDRs); deniedTargets still applies inside them. An instance registered by host name then has to be given by IP address.',
        cli: { flag: 'allowed-targets', roles: SERVING_REGISTRY, arg: 'CIDR[,CIDR...]', help: 'the only addresses registrations and checks may target (empty = any not denied)' },
      }),
      checkOutputExcerpt: Type.Integer({
        minimum: 0,
        maximum: 512,
        default: 0,
        description:
          "Bytes of an HTTP check's response body shown in its Output (printable ASCII only). 0, the default, shows the status line alone: a check's Output is readable by anyone who can read the catalog, so it must not become a way to read what a check can reach.",
      }),
      enableScriptChecks: Type.Boolean({
        default: false,
        description:
          "Script checks (Consul's `Args`): a check that runs a program on the registry's host and reads its exit status. Off by default, as in Consul (enable_script_checks), because whoever may register one runs code here; even when on, only loopback clients or ACL tokens with agent:write may register one. The program runs without a shell, with a minimal environment (PATH only), in its own process group that is killed at its Timeout.",
        cli: { flag: 'enable-script-checks', roles: SERVING_REGISTRY, help: 'allow script checks (Args) from loopback clients or agent:write tokens' },
      }),
      scriptConcurrency: Type.Integer({ minimum: 1, maximum: 256, default: 4, description: 'Script checks running at once on this registry; the others wait their turn.' }),
      minCheckInterval: Duration('1s', {
        description: 'HTTP and TCP checks may not run more often than this (Interval below it is refused with 400); at most once a day is the other bound.',
      }),
      electionTtl: Type.Unsafe<number>({
        type: ['string', 'integer'],
        duration: 'whole-seconds',
        default: '3s',
        errorReason: 'must be a whole number of seconds, at least 1s (like "3s"), or that in milliseconds',
        description:
          '`switchboard registry --store etcd`: registries elect one leader (it runs checks, expires TTLs and publishes changes) through an etcd lease with this TTL: how long a dead leader holds on before another takes over. Shorter fails over sooner but makes a leader that is slow to renew lose leadership more easily. Whole seconds, at least 1s.',
        cli: { flag: 'election-ttl', roles: ['registry'], help: 'with --store etcd: lease TTL of the leader election, about how long a dead leader takes to be replaced (whole seconds, at least 1s)' },
      }),
    }),
    dns: Section(
      {
        listen: Type.Union([Type.Literal(''), Type.String({ format: 'listen' })], {
          default: '127.0.0.1:8600',
          errorReason: `${LISTEN_REASON}, or "" (off)`,
          description: "UDP and TCP on the same port; \"\" turns DNS off. 8600 is Consul's port. Port 0 picks a free one (logged).",
          cli: { flag: 'dns-listen', roles: SERVING_REGISTRY, arg: 'HOST:PORT', help: 'DNS interface host:port, UDP and TCP ("" = off)' },
        }),
        domain: Type.String({
          pattern: DNS_NAME_PATTERN,
          default: 'consul',
          errorReason: 'must be a DNS name like "consul" or "internal.example"',
          description: 'The zone answered: `<service>.service.<domain>`. `consul`, so resolvers already set up for Consul keep working.',
          cli: { flag: 'dns-domain', roles: SERVING_REGISTRY, arg: 'NAME', help: 'DNS zone answered (<service>.service.<domain>)' },
        }),
        altDomain: Type.String({
          pattern: `^$|${DNS_NAME_PATTERN}`,
          default: '',
          errorReason: 'must be a DNS name like "sd.example", or ""',
          description: 'A second zone answered the same way (Consul\'s alt_domain); answers use the name that was asked.',
          cli: { flag: 'dns-alt-domain', roles: SERVING_REGISTRY, arg: 'NAME', help: 'a second DNS zone answered the same way' },
        }),
        serviceTtl: Duration('5s', {
          allowZero: true,
          description: "TTL of service records (whole seconds are sent). Consul's default of 0 makes every resolver ask again for every connection; 5 s keeps them close to the catalog without that.",
          cli: { flag: 'dns-service-ttl', roles: SERVING_REGISTRY, help: 'TTL of service records' },
        }),
        nodeTtl: Duration('5s', { allowZero: true, description: 'TTL of node and `.addr.` records.' }),
        negativeTtl: Duration('5s', {
          allowZero: true,
          description: 'How long resolvers may cache "no such name" (the SOA minimum and TTL in negative answers, RFC 2308): how soon a new service is seen by a resolver that asked before it existed.',
        }),
        onlyPassing: Type.Boolean({
          default: false,
          description: "Answer with passing instances only; by default warning ones are included too (Consul's only_passing).",
          cli: { flag: 'dns-only-passing', roles: SERVING_REGISTRY, help: 'leave warning instances out of DNS answers' },
        }),
        recursors: Type.Array(Type.String({ format: 'listen', errorReason: LISTEN_REASON }), {
          default: [],
          description: 'Resolvers (host:port) that names outside our zones are forwarded to, tried in order. Empty, the default: such names are REFUSED — this server is never an open resolver.',
          cli: { flag: 'dns-recursors', roles: SERVING_REGISTRY, arg: 'HOST:PORT[,...]', help: 'resolvers for names outside our zones (empty = refuse them)' },
        }),
        recursorTimeout: Duration('2s', { description: 'How long to wait for each recursor before trying the next (SERVFAIL after the last).' }),
        rateLimit: Type.Number({
          minimum: 0,
          default: 5000,
          description:
            'Queries per second one source address may send (a token bucket with a burst of one second); beyond it UDP queries are dropped and TCP connections closed. 0 = no limit. Raise it if a caching resolver forwards many clients\' queries from one address.',
          cli: { flag: 'dns-rate-limit', roles: SERVING_REGISTRY, help: 'queries per second per source address (0 = no limit)' },
        }),
        maxStale: Duration('1h', {
          description:
            'Distributed mode: DNS answers come from this registry\'s view of the catalog, also while the store is unreachable (counted in switchboard_dns_stale_answers_total) — for at most this long; after that queries get SERVFAIL rather than an answer that old.',
        }),
      },
      { description: "DNS interface of the registry (Consul's query forms), served from the same catalog view as the API." },
    ),
    proxy: Section(
      {
        listen: Listen('127.0.0.1:8080', { cli: { flag: 'proxy-listen', roles: SERVING_PROXY, arg: 'HOST:PORT', help: 'proxy (data plane) host:port' } }),
        registry: Type.Optional(
          Type.String({
            pattern: '^https?://',
            errorReason: 'must be an http:// or https:// URL',
            example: 'http://127.0.0.1:8500,http://127.0.0.1:8501',
            description: 'Registry base URLs for `switchboard proxy` and `switchboard register` (distributed mode), comma-separated: tried in order. `all` ignores it.',
            cli: { flag: 'registry', roles: ['proxy', 'register'], arg: 'URL[,URL...]', help: 'registry base URLs, e.g. http://127.0.0.1:8500; tried in order' },
          }),
        ),
        pathRouting: Type.Boolean({ default: true, description: 'Route /<service>/... to <service> when no explicit rule matches.', cli: { flag: 'path-routing', roles: SERVING_PROXY, help: 'route /<service>/... to <service>' } }),
        stripServicePrefix: Type.Boolean({
          default: true,
          description: 'With path routing, drop the /<service> part before forwarding (/users/42 → /42).',
          cli: { flag: 'strip-service-prefix', roles: SERVING_PROXY, help: 'drop /<service> before forwarding' },
        }),
        routes: Type.Array(RouteRuleSchema, {
          default: [],
          description:
            'Explicit rules, checked before `<service>.<domain>` and `/<service>/`; the longest matching prefix wins. Each rule has exactly one of `host` (exact Host header, port and case ignored) or `prefix` (starts with "/"), the `service` to send to, and `strip` (default false: remove the matched prefix before forwarding). Services can add prefix rules themselves with a tag like `urlprefix-/api/users`. File only.',
          example: '- { host: api.example.com, service: api }\n- { prefix: /v2/users, service: users, strip: true }',
        }),
        timeouts: Section({
          connect: Duration('5s', { description: 'TCP connect to an upstream instance.', cli: { flag: 'connect-timeout', roles: SERVING_PROXY, help: 'upstream TCP connect timeout' } }),
          response: Duration('60s', {
            description:
              "From forwarding the request to the upstream's response headers, retries included (retries.perTryTimeout limits each try). Also the longest a response body may pause.",
            cli: { flag: 'response-timeout', roles: SERVING_PROXY, help: 'time to the upstream response headers, retries included' },
          }),
          idle: Duration('60s', { description: 'Idle keep-alive connections to upstreams are closed after this.', cli: { flag: 'idle-timeout', roles: SERVING_PROXY, help: 'idle keep-alive sockets to upstreams close after this' } }),
        }),
        drain: Duration('10s', {
          allowZero: true,
          description: 'On SIGTERM/SIGINT: stop accepting, then give in-flight requests this long to finish (0 = close at once).',
          cli: { flag: 'drain', roles: SERVING_PROXY, help: 'on SIGTERM, how long in-flight requests may finish' },
        }),
        resyncInterval: Duration('30s', {
          description: "Anti-entropy: how often a proxy compares its catalog revision with the registry's, in case an invalidation message was lost.",
          cli: { flag: 'resync-interval', roles: SERVING_PROXY, help: 'anti-entropy check of the catalog revision' },
        }),
        workers: Type.Optional(
          Type.Integer({
            minimum: 1,
            maximum: 1024,
            example: '2',
            defaultText: 'the number of cores',
            description:
              '`switchboard proxy` only: data-plane processes sharing the proxy port (node:cluster), one per core when unset; 1 = a single process. One admin listener serves /metrics summed over them. `all` always runs one process.',
            cli: { flag: 'workers', roles: ['proxy'], help: 'data-plane processes sharing the proxy port, 1 = a single process' },
          }),
        ),
        accessLog: Section(
          {
            enabled: Type.Boolean({ default: false, cli: { flag: 'access-log', roles: SERVING_PROXY, help: 'one line per proxied request' } }),
            format: Type.Union([Type.Literal('json'), Type.Literal('combined')], {
              default: 'json',
              errorReason: 'must be json or combined',
              description:
                '`json`: one object per line — time, id (request id), client, method, host, path, status, bytesIn, bytesOut (on the wire, headers included; for HTTP/2, whose streams share a connection, the bytes of the connection since its previous logged request), durationMs, service, upstream (the instance that answered), attempts, error (the proxy\'s error code). `combined`: Apache/nginx combined format, then the same extra fields as key=value.',
              cli: { flag: 'access-log-format', roles: SERVING_PROXY, arg: 'FORMAT', help: 'json or combined' },
            }),
            path: Type.String({
              default: '',
              description: 'File the lines are appended to (buffered, flushed at shutdown); empty = stdout, beside the pino logs.',
              cli: { flag: 'access-log-path', roles: SERVING_PROXY, arg: 'FILE', help: 'access log file (empty = stdout)' },
            }),
            sample: Type.Number({
              minimum: 0,
              maximum: 1,
              default: 1,
              description: 'Share of requests logged (0 to 1). Answers of 500 and more are always logged, whatever the sample.',
              cli: { flag: 'access-log-sample', roles: SERVING_PROXY, help: 'share of requests logged (5xx always are)' },
            }),
          },
          { description: 'Access log of the proxy: one line per HTTP request it answered (WebSocket tunnels are not logged). Off by default.' },
        ),
        workerSockets: Type.Union([Type.Literal('auto'), Type.Literal('shared'), Type.Literal('reuseport')], {
          default: 'auto',
          errorReason: 'must be auto, shared or reuseport',
          description:
            "With --workers: `shared`, node:cluster's primary accepts every connection and hands it to the workers in turn (round robin); `reuseport`, every worker binds the port itself (SO_REUSEPORT) and the kernel spreads connections, with no hand-off through the primary — Node 22.12 or newer; `auto`, reuseport where the Node supports it, else shared. reuseport measured 1.10–1.21× the requests/s of shared with 2 workers, and a lower p99 (bench/workers.ts, Node 24; README, Benchmarks).",
          cli: { flag: 'worker-sockets', roles: ['proxy'], arg: 'MODE', help: 'with --workers: auto, shared (cluster round robin) or reuseport (Node >= 22.12)' },
        }),
        tls: ListenerTls('the proxy listener (HTTPS, and HTTP/2 negotiated by ALPN)', {
          http2: Type.Boolean({ default: true, description: 'Offer HTTP/2 (ALPN h2) beside HTTP/1.1. Requests are forwarded upstream as HTTP/1.1 whatever the client spoke.' }),
          maxConcurrentStreams: Type.Integer({
            minimum: 1,
            maximum: 1000,
            default: 100,
            description: 'HTTP/2 streams one client connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).',
          }),
          redirectListen: Type.Union([Type.Literal(''), Type.String({ format: 'listen' })], {
            default: '',
            errorReason: `${LISTEN_REASON}, or "" (off)`,
            description: 'A plain-HTTP listener that answers every request with 308 to the same URL over https (the proxy port unless 443). "" = none.',
          }),
        }),
        clientTimeouts: Section(
          {
            header: Duration('10s', { cli: { flag: 'client-header-timeout', roles: SERVING_PROXY, help: 'clients must send their request headers within this' } }),
            request: Duration('60s', { allowZero: true, cli: { flag: 'client-request-timeout', roles: SERVING_PROXY, help: 'clients must send their whole request within this (0 = no limit)' } }),
          },
          {
            description:
              'Slowloris guards on client connections: a client must send its request headers within `header` and its whole request (body included) within `request` (0 = no limit) or it is answered 408 and disconnected. `header` must not be longer than `request`.',
          },
        ),
        maxRequestHeaders: Type.Integer({
          minimum: 1,
          maximum: 1000,
          default: 100,
          description: "Requests with more header lines than this are answered 431 and their connection closed (Envoy's max_headers_count default is 100).",
          cli: { flag: 'max-request-headers', roles: SERVING_PROXY, help: 'requests with more header lines get 431' },
        }),
        trustedProxies: Type.Array(Type.String({ format: 'cidr', errorReason: 'must be an IP address or CIDR, like "10.0.0.0/8" or "::1/128"' }), {
          default: [],
          description:
            "Peers (IP addresses or CIDRs) whose X-Forwarded-For/-Host/-Proto and Forwarded headers are believed: from them X-Forwarded-For is appended to; from anyone else all of them are replaced. Put your load balancer here (Envoy's xff_num_trusted_hops, by address).",
          cli: { flag: 'trusted-proxies', roles: SERVING_PROXY, arg: 'CIDR[,CIDR...]', help: 'peers whose X-Forwarded-*/Forwarded headers are kept (from others they are replaced)' },
        }),
        defaults: ServicePolicySchema,
        services: Type.Record(Type.String({ minLength: 1 }), ServicePolicyOverridesSchema, {
          default: {},
          description: 'Per-service overrides of `defaults` (any subset of its fields).',
          example:
            'users:\n  balancer: ring-hash\n  hashKey: cookie:session\n  healthCheck: { enabled: true, path: /healthz, interval: 2s }\n  retries: { perTryTimeout: 500ms }\npayments:\n  retries: { attempts: 0 }\n  limits: { maxConcurrent: 64, maxPending: 32 }',
        }),
      },
      { description: 'The proxy (data plane): clients call services through it by name.' },
    ),
    acl: Section(
      {
        enabled: Type.Boolean({
          default: false,
          description:
            "ACL tokens (Consul's, a subset): every request is judged by its token (?token=, X-Consul-Token or Authorization: Bearer). Writes need service:write on the service; reads leave out what the token may not read. While off, protected mode guards writes instead.",
          cli: { flag: 'acl-enabled', roles: SERVING_REGISTRY, help: 'judge every API request by its ACL token' },
        }),
        defaultPolicy: Type.Union([Type.Literal('allow'), Type.Literal('deny')], {
          default: 'deny',
          errorReason: 'must be allow or deny',
          description: 'What a token may do where no rule of it says: deny (the safe default) or allow.',
          cli: { flag: 'acl-default-policy', roles: SERVING_REGISTRY, arg: 'allow|deny', help: 'what a token may do where its rules say nothing' },
        }),
        policies: Type.Array(
          Type.Object(
            {
              name: Type.String({ minLength: 1, maxLength: 128 }),
              rules: Type.String(),
              description: Type.String({ default: '' }),
            },
            { additionalProperties: false },
          ),
          {
            default: [],
            description: 'Policies known from the configuration (read-only: not stored, not deletable through the API). Rules are Consul\'s, in HCL or JSON. File only.',
            example: '- { name: proxies, rules: \'service_prefix "" { policy = "read" }\' }',
          },
        ),
        staticTokens: Type.Array(
          Type.Object(
            {
              secret: Type.String({ minLength: 16 }),
              description: Type.String({ default: '' }),
              policies: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
              serviceIdentities: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
            },
            { additionalProperties: false },
          ),
          {
            default: [],
            description: 'Tokens known from the configuration, naming policies (from the file or the API) or service identities. Their secrets should come from a file only root can read. File only.',
            example: '- { secret: "<a long random secret>", description: proxies, policies: [proxies] }',
          },
        ),
        tokens: Section({
          initialManagement: Type.Optional(
            Type.String({
              minLength: 16,
              example: '"<a long random secret>"',
              defaultText: 'none',
              description: "Consul's initial_management: a management token known from the configuration (at least 16 characters). Prefer the environment variable to the file.",
              cli: { flag: 'acl-initial-management-token', roles: SERVING_REGISTRY, arg: 'SECRET', help: 'a management token known from the configuration' },
            }),
          ),
        }),
      },
      { description: 'Access control on the registry API.' },
    ),
    token: Type.Optional(
      Type.String({
        minLength: 1,
        example: '"<secret>"',
        defaultText: 'none (anonymous)',
        description: "The ACL token `switchboard proxy` and `switchboard register` send to the registry (CONSUL_HTTP_TOKEN is read too, as Consul's tools do).",
        cli: { flag: 'token', roles: ['proxy', 'register'], arg: 'SECRET', help: 'ACL token sent to the registry' },
      }),
    ),
    caFile: Type.Optional(
      Type.String({
        minLength: 1,
        example: '/etc/switchboard/ca.pem',
        defaultText: "Node's bundled public roots",
        description: "PEM bundle of the CAs an https:// registry's certificate must chain to, for `switchboard proxy` and `switchboard register` (CONSUL_CACERT is read too, as Consul's tools do).",
        cli: { flag: 'ca-file', roles: ['proxy', 'register'], arg: 'FILE', help: 'CA bundle (PEM) that verifies an https:// registry' },
      }),
    ),
    notify: Section(
      {
        webhooks: Type.Array(
          Type.Object(
            {
              name: Type.String({ default: '', maxLength: 64, description: 'Shown in logs and metrics; the URL\'s host:port when empty.' }),
              url: Type.String({ pattern: '^https?://[^\\s]+$', errorReason: 'must be an http:// or https:// URL' }),
              events: Type.Array(
                Type.Union(NOTIFY_EVENTS.map((e) => Type.Literal(e)), { errorReason: `must be one of ${NOTIFY_EVENTS.join(', ')}` }),
                { uniqueItems: true, minItems: 1, default: [...NOTIFY_EVENTS] },
              ),
              services: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'Service names, or prefixes ending in `*`; empty = every service.' }),
              tags: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'Only instances carrying one of these tags; empty = any.' }),
              secret: Type.String({ default: '', description: 'Signs each body: X-Switchboard-Signature: sha256=<hex HMAC-SHA256>.' }),
            },
            { additionalProperties: false },
          ),
          {
            default: [],
            description:
              'Where notifications go: each webhook gets a JSON POST per event it wants (`events`, `services`, `tags`). Events: instance-critical, instance-recovered, service-down (no passing instance left), service-up, instance-ejected (by a proxy, sent by that proxy), leader-change. One message per state change, not per check run. File only (no flags).',
          },
        ),
        holdDown: Duration('3s', {
          allowZero: true,
          description: 'A state must hold this long before it is notified: an instance that flaps critical and back within it causes no message at all.',
        }),
        timeout: Duration('5s', { description: "How long one delivery waits for the receiver's answer." }),
        retries: Type.Integer({ minimum: 0, maximum: 20, default: 5, description: 'Deliveries retried after a failure (no answer or not 2xx), then the notification is dropped (logged and counted).' }),
        backoff: Duration('1s', { description: 'Wait before the first retry; it doubles at each retry up to maxBackoff.' }),
        maxBackoff: Duration('1m'),
        rateLimit: Type.Number({ exclusiveMinimum: 0, default: 10, description: 'Notifications per second to one webhook, at most; the rest wait their turn.' }),
        queueLimit: Type.Integer({ minimum: 1, default: 1000, description: 'Notifications waiting for one webhook; beyond it the oldest is dropped.' }),
      },
      {
        description:
          "Notifications of health changes to webhooks. The registry's leader sends instance and service events and remembers in the store what it told, so after a leader change the new leader sends what the old one had not (at least once); each proxy sends its own ejections. A slow or failing webhook delays nothing but its own queue.",
      },
    ),
    admin: Section(
      {
        listen: Listen('127.0.0.1:9901', { cli: { flag: 'admin-listen', roles: LISTENING, arg: 'HOST:PORT', help: 'admin host:port (/metrics, /healthz, /readyz)' } }),
        tls: ListenerTls('the admin listener', {}),
      },
      { description: 'Admin listener: GET /metrics (Prometheus), /healthz, /readyz; POST /reload (all, proxy) re-reads the configuration.' },
    ),
    store: Section(
      {
        kind: Type.Union([Type.Literal('embedded'), Type.Literal('etcd')], {
          default: 'embedded',
          errorReason: 'must be one of embedded, etcd',
          description: 'embedded (journal in dataDir, single node) or etcd (registry role, several nodes).',
          cli: { flag: 'store', roles: ['registry'], arg: 'KIND', help: 'embedded|etcd' },
        }),
        compactEvery: Type.Integer({
          minimum: 1,
          default: 10000,
          description:
            'Embedded store: compact (seal the journal, write a snapshot in the background while writes go on, delete the journal it covers) once the journal holds this many records and at least half the last snapshot\'s size.',
          cli: { flag: 'compact-every', roles: SERVING_REGISTRY, help: 'compact the journal after at least this many records' },
        }),
        etcd: Section({
          endpoints: Type.Array(Type.String({ minLength: 1 }), {
            minItems: 1,
            default: ['127.0.0.1:2379'],
            description: 'etcd client URLs or host:port.',
            cli: { flag: 'etcd-endpoints', roles: ['registry'], help: 'etcd client URLs or host:port, comma-separated' },
          }),
          prefix: Type.String({ default: 'switchboard/', description: 'Every key Switchboard writes lives under this prefix.', cli: { flag: 'etcd-prefix', roles: ['registry'], arg: 'PREFIX', help: 'key prefix in etcd' } }),
        }),
      },
      { description: 'Where the registry keeps the catalog. `switchboard all` always uses `embedded`.' },
    ),
    bus: Section(
      {
        kind: Type.Union([Type.Literal('local'), Type.Literal('redis')], {
          default: 'local',
          errorReason: 'must be one of local, redis',
          description: "The all role's bus: local (in-process) is the only kind it runs.",
          cli: { flag: 'bus', roles: ['all'], arg: 'KIND', help: 'invalidation bus of the all role: local (registry and proxy always use Redis)' },
        }),
        redis: Section({
          url: Type.String({
            pattern: '^rediss?(\\+(sentinel|cluster))?://',
            default: 'redis://127.0.0.1:6379',
            errorReason: 'must be a redis://, rediss://, redis+sentinel:// or redis+cluster:// URL',
            description: 'redis://, rediss:// (TLS), redis+sentinel://host:port[,host:port]/<master>[/db], redis+cluster://host:port[,host:port].',
            cli: { flag: 'redis', roles: ['registry', 'proxy'], arg: 'URL', help: 'Redis of the invalidation bus: redis://, rediss://, redis+sentinel://, redis+cluster://' },
          }),
          channel: Type.String({ minLength: 1, default: 'switchboard:catalog', cli: { flag: 'redis-channel', roles: ['registry', 'proxy'], arg: 'NAME', help: 'pub/sub channel name' } }),
          key: Type.String({
            default: '',
            pattern: '^(|.{16,})$',
            errorReason: 'must be empty or at least 16 characters',
            description:
              'Secret shared by every registry and proxy (at least 16 characters; prefer the environment variable or the config file to the flag, which other users can see in the process list). With it, bus messages are signed (HMAC-SHA256) and carry the changed instances, so a proxy applies most changes without asking a registry; a message with a bad signature is dropped. Without it, messages carry only service names, and a proxy fetches each change from a registry — whoever can publish on Redis can then at most make proxies fetch. Set it on the registries and the proxies alike.',
            cli: { flag: 'redis-key', roles: ['registry', 'proxy'], arg: 'SECRET', help: 'shared secret: signed bus messages that carry the changes themselves' },
          }),
        }),
      },
      { description: 'Invalidation bus from the registry to the proxies. `switchboard all` always uses `local`; the `registry` and `proxy` roles always use Redis.' },
    ),
    register: Section(
      {
        service: Type.Optional(Type.String({ minLength: 1, example: 'users', description: 'Required by the register role.', cli: { flag: 'service', roles: ['register'], arg: 'NAME', help: 'service name to register (required)' } })),
        id: Type.Optional(Type.String({ minLength: 1, example: 'users-1', defaultText: '<service>-<address>-<port>', cli: { flag: 'id', roles: ['register'], arg: 'ID', help: 'instance id' } })),
        address: Type.String({ minLength: 1, default: '127.0.0.1', cli: { flag: 'address', roles: ['register'], arg: 'HOST', help: 'address of the instance' } }),
        port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, example: '9001', description: 'Required by the register role.', cli: { flag: 'port', roles: ['register'], help: 'port of the instance (required)' } })),
        tags: Type.Array(Type.String(), { default: [], cli: { flag: 'tags', roles: ['register'], help: 'tags, comma-separated (e.g. urlprefix-/api)' } }),
        ttl: Duration('10s', { cli: { flag: 'ttl', roles: ['register'], help: 'TTL of the check; heartbeats every third of it' } }),
        deregisterAfter: Duration('1m', {
          allowZero: true,
          description: "Consul's DeregisterCriticalServiceAfter (0 = never).",
          cli: { flag: 'deregister-after', roles: ['register'], help: 'the registry removes the instance after this long critical (0 = never)' },
        }),
      },
      {
        description:
          '`switchboard register` (a sidecar): the one instance it registers with a TTL check, heartbeats every third of the TTL and deregisters on SIGTERM. It talks to the registries in proxy.registry (flag --registry).',
      },
    ),
  },
  { additionalProperties: false },
);

/** The validated file, before `proxy.services` overrides are merged over `proxy.defaults`. */
export type ConfigFile = Static<typeof ConfigSchema>;
export type ServicePolicy = Static<typeof ServicePolicySchema>;
export type ServicePolicyOverrides = Static<typeof ServicePolicyOverridesSchema>;

/** `host:port` or `[ipv6]:port`; undefined when the text is not a listen address. */
export function parseListen(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: m[1] ?? m[2], port };
}

/**
 * The one listen-address parser's strict form, for code about to bind: config validation has
 * checked the format already, so this guards direct construction (tests, embedding).
 */
export function listenTarget(listen: string, field: string): { host: string; port: number } {
  const parsed = parseListen(listen);
  if (parsed === undefined) throw new SwitchboardError('config_invalid', `${field}: ${LISTEN_REASON}, got ${JSON.stringify(listen)}`, { field });
  return parsed;
}

/** `200` or `"200-399"` → [low, high]; undefined when it is neither or out of 100-599. */
export function parseStatusRange(value: number | string): [number, number] | undefined {
  const m = typeof value === 'number' ? [String(value), String(value), String(value)] : /^(\d{3})(?:-(\d{3}))?$/.exec(value.trim());
  if (!m) return undefined;
  const low = Number(m[1]);
  const high = Number(m[2] ?? m[1]);
  if (!Number.isInteger(low) || !(low >= 100 && high <= 599 && low <= high)) return undefined;
  return [low, high];
}
