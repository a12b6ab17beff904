import { isIP } from 'node:net';
import type { SwitchboardConfig } from '../config/types';
import type { Logger } from '../log';
import { DnsServer } from '../registry/dns/dns-server';
import type { Registry } from '../registry/registry';
import { listen, logListening, type StopStack } from './lifecycle';

/**
 * The DNS listener of a role that runs a registry (`all`, `registry`), over that registry's
 * catalog view; none when dns.listen is "". Returns the bound host:port ('' when off).
 */
export async function startRoleDns(
  stack: StopStack,
  config: Readonly<SwitchboardConfig>,
  registry: Registry,
  logger: Logger,
  storeHealthy?: () => boolean,
): Promise<string> {
  if (config.dns.listen === '') return '';
  const dns = new DnsServer({
    config: config.dns,
    catalog: registry.view,
    datacenter: config.datacenter,
    node: () => ({ name: config.nodeName, address: hostOf(config.api.advertise ?? registry.address) }),
    storeHealthy,
    logger,
  });
  await listen('dns', config.dns.listen, () => dns.start());
  stack.push('dns', () => dns.stop());
  logListening(logger, 'dns', dns.address);
  return dns.address;
}

/** The IP of a host:port, or '' when it is a name or the unspecified address. */
function hostOf(hostPort: string): string {
  const host = hostPort.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
  return isIP(host) !== 0 && host !== '0.0.0.0' && host !== '::' ? host : '';
}
