/** HAProxy: one thread, `http-reuse always` (upstream keep-alive shared across clients). */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { APP_HOST, type PeerContext, type PeerFactory } from './peer';
import { commandMissing, startConfigPeer } from './config-peer';

function haproxyConfig(port: number, backendPort: number): string {
  return `global
  nbthread 1
  # HAProxy needs ~2 fds per connection; keep within common ulimits.
  maxconn 4096

defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s

frontend bench
  bind 127.0.0.1:${port}
  use_backend app if { req.hdr(host) -i ${APP_HOST} }

backend app
  server app1 127.0.0.1:${backendPort}
`;
}

function configure(ctx: PeerContext, port: number): string[] {
  const dir = path.join(ctx.dir, `haproxy-${port}`);
  mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, 'haproxy.cfg');
  writeFileSync(conf, haproxyConfig(port, ctx.backends.appPort));
  // -db: stay in the foreground, so the process we spawned is the one doing the work.
  return ['-db', '-f', conf];
}

export const haproxyPeer: PeerFactory = {
  name: 'haproxy',
  needs: ['haproxy'],
  unavailable: () => commandMissing('haproxy'),
  start: (ctx) => startConfigPeer({ name: 'haproxy', command: 'haproxy', configure }, ctx),
};
