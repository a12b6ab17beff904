import { BlockList, isIP } from 'node:net';
import type { RegistryConfig } from '../config/types';

/**
 * Where registrations may point the proxy and checks may probe. A registration is an
 * instruction to send traffic somewhere: without limits anyone who may register can aim the
 * proxy (or a check, whose Output is readable) at a cloud metadata service or at this
 * process's own API. Denied: `registry.deniedTargets` (link-local by default) and this
 * process's own listeners in any form that names them; when `registry.allowedTargets` is set,
 * everything outside it too.
 */
export class TargetPolicy {
  private readonly denied = new BlockList();
  private readonly allowed: BlockList | undefined;

  constructor(
    config: Pick<RegistryConfig, 'deniedTargets' | 'allowedTargets'>,
    /** host:port of every listener of this process (bound addresses, so port 0 is resolved). */
    private readonly ownListeners: () => readonly string[],
  ) {
    for (const cidr of config.deniedTargets) addCidr(this.denied, cidr);
    if (config.allowedTargets.length > 0) {
      this.allowed = new BlockList();
      for (const cidr of config.allowedTargets) addCidr(this.allowed, cidr);
    }
  }

  /** Why `host:port` may not be targeted, or undefined when it may. */
  refusal(host: string, port: number): string | undefined {
    const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
    const addresses = bare.toLowerCase() === 'localhost' ? ['127.0.0.1', '::1'] : isIP(bare) !== 0 ? [bare] : [];
    if (addresses.length === 0) {
      return this.allowed === undefined ? undefined : `"${host}" is a host name; registry.allowedTargets is set, so give an IP address`;
    }
    for (const address of addresses) {
      const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      if (this.denied.check(address, type)) return `${address} is in registry.deniedTargets`;
      if (this.allowed !== undefined && !this.allowed.check(address, type)) return `${address} is not in registry.allowedTargets`;
      if (this.isOwnListener(address, port)) return `${host}:${port} is one of this process's own listeners`;
    }
    return undefined;
  }

  private isOwnListener(address: string, port: number): boolean {
    for (const listener of this.ownListeners()) {
      const colon = listener.lastIndexOf(':');
      if (Number(listener.slice(colon + 1)) !== port) continue;
      const host = listener.slice(0, colon).replace(/^\[|\]$/g, '');
      // A wildcard listener answers on every local address; a specific one on its own.
      if (host === '0.0.0.0' || host === '::' || isLocal(address) || address === host) return true;
    }
    return false;
  }
}

function isLocal(address: string): boolean {
  return address.startsWith('127.') || address === '::1' || address === '0.0.0.0' || address === '::' || address === '::ffff:127.0.0.1';
}

function addCidr(list: BlockList, cidr: string): void {
  const [address, bits] = cidr.split('/');
  const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
  list.addSubnet(address, bits === undefined ? (family === 'ipv6' ? 128 : 32) : Number(bits), family);
}
