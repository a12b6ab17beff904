import { SwitchboardError } from '../errors';

/** `--registry http://a:8500,http://b:8500` → the URLs in order; config_invalid when unusable. */
export function registryUrls(value: string | undefined, role: string): string[] {
  const invalid = (reason: string): SwitchboardError =>
    new SwitchboardError('config_invalid', `proxy.registry: ${reason}`, { field: 'proxy.registry' });
  if (value === undefined || value.trim() === '') throw invalid(`the ${role} role needs --registry URL[,URL...] (a registry API base URL)`);
  const urls = value.split(',').map((u) => u.trim()).filter((u) => u.length > 0);
  for (const url of urls) {
    if (!/^https?:\/\//.test(url) || !URL.canParse(url)) throw invalid(`not an http:// or https:// URL: ${JSON.stringify(url)}`);
  }
  return urls.map((u) => u.replace(/\/+$/, ''));
}
