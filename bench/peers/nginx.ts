/**
 * nginx as the reference C proxy: one worker, upstream keep-alive, no access log, request
 * bodies streamed (not spooled to disk) so the 1 MiB upload compares like for like.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { APP_HOST, type PeerContext, type PeerFactory } from './peer';
import { commandMissing, startConfigPeer } from './config-peer';

function nginxConfig(dir: string, port: number, backendPort: number): string {
  const temp = (name: string): string => path.join(dir, name);
  // As root the worker would drop to `nobody`, which cannot use our private temp dir.
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  return `${user}worker_processes 1;
daemon off;
pid ${temp('nginx.pid')};
error_log ${temp('error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${temp('body')};
  proxy_temp_path ${temp('proxy')};
  fastcgi_temp_path ${temp('fastcgi')};
  uwsgi_temp_path ${temp('uwsgi')};
  scgi_temp_path ${temp('scgi')};
  keepalive_requests 1000000;
  upstream app {
    server 127.0.0.1:${backendPort};
    keepalive 256;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port} default_server;
    server_name ${APP_HOST};
    client_max_body_size 64m;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_request_buffering off;
      proxy_max_temp_file_size 0;
    }
  }
}
`;
}

function configure(ctx: PeerContext, port: number): string[] {
  const dir = path.join(ctx.dir, `nginx-${port}`);
  mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, 'nginx.conf');
  writeFileSync(conf, nginxConfig(dir, port, ctx.backends.appPort));
  return ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', conf];
}

export const nginxPeer: PeerFactory = {
  name: 'nginx',
  needs: ['nginx'],
  unavailable: () => commandMissing('nginx'),
  start: (ctx) => startConfigPeer({ name: 'nginx', command: 'nginx', configure }, ctx),
};
