/**
 * `npm run build`'s second step: the web UI into dist/ui — its own files (ui/) and the
 * libraries it uses, copied from node_modules (no CDN: it works offline). No bundler: the
 * browser loads ES modules; the one bare import in them (preact/hooks → "preact") is
 * rewritten to a relative path here, so no import map (an inline script) is needed.
 */
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(__dirname, '../..');
const out = path.join(root, 'dist', 'ui');
const modules = path.join(root, 'node_modules');

rmSync(out, { recursive: true, force: true });
mkdirSync(path.join(out, 'vendor'), { recursive: true });
for (const name of readdirSync(path.join(root, 'ui'))) copyFileSync(path.join(root, 'ui', name), path.join(out, name));

const vendor: Array<[from: string, to: string, rewrite?: (text: string) => string]> = [
  ['preact/dist/preact.module.js', 'preact.js'],
  ['preact/hooks/dist/hooks.module.js', 'hooks.js', (text) => text.replace(/from\s*["']preact["']/g, 'from"./preact.js"')],
  ['htm/dist/htm.module.js', 'htm.js'],
  ['uplot/dist/uPlot.iife.min.js', 'uPlot.iife.min.js'],
  ['uplot/dist/uPlot.min.css', 'uPlot.min.css'],
];
for (const [from, to, rewrite] of vendor) {
  const source = path.join(modules, from);
  const target = path.join(out, 'vendor', to);
  if (rewrite === undefined) copyFileSync(source, target);
  else writeFileSync(target, rewrite(readFileSync(source, 'utf8')));
}
let bytes = 0;
for (const dir of [out, path.join(out, 'vendor')]) for (const name of readdirSync(dir)) if (statSync(path.join(dir, name)).isFile()) bytes += statSync(path.join(dir, name)).size;
process.stdout.write(`web UI: ${(bytes / 1024).toFixed(0)} KiB in dist/ui\n`);
