/**
 * Requests a reverse proxy must refuse or clean up, sent byte for byte. For every case the
 * process stays up (an uncaught exception fails this file), the client gets the documented
 * status, the backend never sees what it was not routed, and — where the connection is kept —
 * the next request on it is answered.
 */
import assert from 'node:assert/strict';
import http, { type IncomingMessage } from 'node:http';
import { after, before, beforeEach, describe, it } from 'node:test';
import { closeNow, listenOnLoopback } from '../helpers/http-server';
import { ProxyHarness } from '../helpers/proxy-harness';
import { RawClient } from '../helpers/raw-http';

interface Seen {
  url: string;
  rawHeaders: string[];
  body: string;
}

function header(seen: Seen, name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < seen.rawHeaders.length; i += 2) if (seen.rawHeaders[i].toLowerCase() === name) values.push(seen.rawHeaders[i + 1]);
  return values;
}

describe('hostile client requests', () => {
  let harness: ProxyHarness;
  let backend: http.Server;
  let seen: Seen[] = [];

  before(async () => {
    backend = http.createServer((req: IncomingMessage, res) => {
      let body = '';
      req.setEncoding('latin1');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        seen.push({ url: req.url ?? '', rawHeaders: req.rawHeaders, body });
        res.end('ok');
      });
    });
    const port = await listenOnLoopback(backend);
    harness = await ProxyHarness.start({
      config: { routes: [{ prefix: '/api/users', service: 'users', strip: true }], maxRequestHeaders: 20 },
    });
    await harness.serveFrom('users', [{ id: 'u1', port }]);
  });

  beforeEach(() => {
    seen = [];
  });

  after(async () => {
    await harness.stop();
    await closeNow(backend);
  });

  /** `field`: the JSON error names it, and the connection stays usable for the next request. */
  async function expectRefused(request: string, status: number, field?: string, keepsConnection = field !== undefined): Promise<void> {
    const client = await RawClient.connect(harness.address.port);
    try {
      const reply = await client.exchange(request);
      assert.equal(reply.status, status, reply.body.toString());
      assert.equal(seen.length, 0, 'the backend saw nothing');
      if (!keepsConnection) {
        await client.waitClosed();
        return;
      }
      if (field !== undefined) assert.equal((JSON.parse(reply.body.toString()) as { field?: string }).field, field);
      const next = await client.exchange('GET /next HTTP/1.1\r\nHost: users.svc\r\n\r\n');
      assert.equal(next.status, 200);
      assert.equal(seen[0].url, '/next');
    } finally {
      client.close();
    }
  }

  const refused: Array<[string, string, number, string?]> = [
    ['two Host lines', 'GET / HTTP/1.1\r\nHost: users.svc\r\nHost: other.svc\r\n\r\n', 400, 'host'],
    ['an empty Host', 'GET /users/ HTTP/1.1\r\nHost: \r\n\r\n', 400, 'host'],
    ['a Host outside the hostname grammar', 'GET / HTTP/1.1\r\nHost: users.svc@evil\r\n\r\n', 400, 'host'],
    ['a Host with a path in it', 'GET / HTTP/1.1\r\nHost: users.svc/x\r\n\r\n', 400, 'host'],
    ['an absolute-form target', 'GET http://users.svc/ HTTP/1.1\r\nHost: users.svc\r\n\r\n', 400, 'target'],
    ['OPTIONS *', 'OPTIONS * HTTP/1.1\r\nHost: users.svc\r\n\r\n', 400, 'target'],
    ['an encoded slash', 'GET /a%2Fb HTTP/1.1\r\nHost: users.svc\r\n\r\n', 400, 'target'],
    ['an encoded slash, lower case', 'GET /a%2fb HTTP/1.1\r\nHost: users.svc\r\n\r\n', 400, 'target'],
    ['an encoded backslash', 'GET /a%5Cb HTTP/1.1\r\nHost: users.svc\r\n\r\n', 400, 'target'],
    ['a backslash', 'GET /a\\b HTTP/1.1\r\nHost: users.svc\r\n\r\n', 400, 'target'],
    ['an encoded NUL', 'GET /a%00b HTTP/1.1\r\nHost: users.svc\r\n\r\n', 400, 'target'],
    ['a Tomcat path parameter dot-segment', 'GET /api/users/..;/admin HTTP/1.1\r\nHost: x.example\r\n\r\n', 400, 'target'],
    ['a bad percent-escape', 'GET /a%zz HTTP/1.1\r\nHost: users.svc\r\n\r\n', 400, 'target'],
    ['more header lines than the cap', `GET / HTTP/1.1\r\nHost: users.svc\r\n${Array.from({ length: 25 }, (_, i) => `X-H${i}: v\r\n`).join('')}\r\n`, 431],
  ];
  for (const [name, request, status, field] of refused) {
    it(`${name} → ${status}`, () => expectRefused(request, status, field));
  }

  it('CONNECT → 400 (not a forward proxy)', () => expectRefused('CONNECT users.svc:443 HTTP/1.1\r\nHost: users.svc:443\r\n\r\n', 400));

  it('Content-Length with Transfer-Encoding (smuggling) → 400 from the parser, process up', () =>
    expectRefused('POST / HTTP/1.1\r\nHost: users.svc\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: users.svc\r\n\r\n', 400));

  it('/api/users/../../admin is routed as /admin, never sent to the users backend', async () => {
    await expectRefused('GET /api/users/../../admin HTTP/1.1\r\nHost: x.example\r\n\r\n', 404, undefined, true);
  });

  it('%2e%2e segments are decoded, then removed, before routing', async () => {
    await expectRefused('GET /api/users/%2e%2e/%2E%2E/admin HTTP/1.1\r\nHost: x.example\r\n\r\n', 404, undefined, true);
  });

  it('routes and forwards exactly the normalised target', async () => {
    const client = await RawClient.connect(harness.address.port);
    try {
      const reply = await client.exchange('GET /api/users//a/./b/../c%7e?x=/../y HTTP/1.1\r\nHost: x.example\r\n\r\n');
      assert.equal(reply.status, 200);
      assert.equal(seen[0].url, '/a/c~?x=/../y');
    } finally {
      client.close();
    }
  });

  it('hop-by-hop request headers and those Connection names are stripped; Host, framing, TE: trailers kept; order kept', async () => {
    const client = await RawClient.connect(harness.address.port);
    try {
      const reply = await client.exchange(
        'POST /x HTTP/1.1\r\nHost: users.svc\r\nX-First: 1\r\nConnection: keep-alive, X-Secret, Host, Content-Length\r\nX-Secret: s\r\n' +
          'Keep-Alive: 300\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic abc\r\nTE: trailers\r\nTrailer: X-T\r\nX-Last: 2\r\nContent-Length: 4\r\n\r\nbody',
      );
      assert.equal(reply.status, 200);
      const got = seen[0];
      for (const name of ['connection', 'x-secret', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'trailer']) {
        assert.deepEqual(header(got, name).filter((v) => name !== 'connection' || v !== 'keep-alive'), [], name);
      }
      assert.deepEqual(header(got, 'host'), ['users.svc']);
      assert.deepEqual(header(got, 'te'), ['trailers']);
      assert.equal(got.body, 'body');
      const names = got.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
      assert.ok(names.indexOf('x-first') < names.indexOf('x-last'), names.join(','));
      // The client's connection stays usable.
      assert.equal((await client.exchange('GET /y HTTP/1.1\r\nHost: users.svc\r\n\r\n')).status, 200);
    } finally {
      client.close();
    }
  });

  it('TE other than trailers is dropped', async () => {
    const client = await RawClient.connect(harness.address.port);
    try {
      assert.equal((await client.exchange('GET /x HTTP/1.1\r\nHost: users.svc\r\nTE: gzip\r\n\r\n')).status, 200);
      assert.deepEqual(header(seen[0], 'te'), []);
    } finally {
      client.close();
    }
  });

  it('a chunked request body arrives re-framed, whole', async () => {
    const client = await RawClient.connect(harness.address.port);
    try {
      const reply = await client.exchange('POST /c HTTP/1.1\r\nHost: users.svc\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n');
      assert.equal(reply.status, 200);
      assert.equal(seen[0].body, 'abcde');
    } finally {
      client.close();
    }
  });

  it('Expect: 100-continue to an unknown service gets its final status without a 100', async () => {
    const client = await RawClient.connect(harness.address.port);
    try {
      const reply = await client.exchange('POST /x HTTP/1.1\r\nHost: nobody.svc\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n');
      assert.equal(reply.status, 404);
      assert.equal(JSON.parse(reply.body.toString()).error, 'unknown_service');
    } finally {
      client.close();
    }
  });

  it('Expect: 100-continue to a routed service gets 100, then the response', async () => {
    const client = await RawClient.connect(harness.address.port);
    try {
      const interim = await client.exchange('POST /x HTTP/1.1\r\nHost: users.svc\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n');
      assert.equal(interim.status, 100);
      const reply = await client.exchange('body');
      assert.equal(reply.status, 200);
      assert.equal(seen[0].body, 'body');
      assert.deepEqual(header(seen[0], 'expect'), []);
    } finally {
      client.close();
    }
  });
});

describe('X-Forwarded-* from trusted proxies', () => {
  let backend: http.Server;
  let seen: IncomingMessage[] = [];

  before(async () => {
    backend = http.createServer((req, res) => {
      seen.push(req);
      res.end('ok');
    });
  });

  after(() => closeNow(backend));

  async function through(trustedProxies: string[]): Promise<IncomingMessage> {
    seen = [];
    const port = backend.listening ? (backend.address() as { port: number }).port : await listenOnLoopback(backend);
    const harness = await ProxyHarness.start({ config: { trustedProxies } });
    try {
      await harness.serveFrom('users', [{ id: 'u1', port }]);
      const client = await RawClient.connect(harness.address.port);
      await client.exchange(
        'GET / HTTP/1.1\r\nHost: users.svc\r\nX-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: public.example\r\nForwarded: for=203.0.113.9\r\n\r\n',
      );
      client.close();
      return seen[0];
    } finally {
      await harness.stop();
    }
  }

  it('a trusted peer (127.0.0.0/8): its X-Forwarded-For is appended to, its Proto, Host and Forwarded kept', async () => {
    const req = await through(['127.0.0.0/8']);
    assert.equal(req.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
    assert.equal(req.headers['x-forwarded-proto'], 'https');
    assert.equal(req.headers['x-forwarded-host'], 'public.example');
    assert.equal(req.headers.forwarded, 'for=203.0.113.9');
  });

  it('an untrusted peer (only 10.0.0.0/8 trusted): every one of them replaced', async () => {
    const req = await through(['10.0.0.0/8']);
    assert.equal(req.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(req.headers['x-forwarded-proto'], 'http');
    assert.equal(req.headers['x-forwarded-host'], 'users.svc');
    assert.equal(req.headers.forwarded, undefined);
  });
});
