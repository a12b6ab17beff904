/**
 * Writes what the config schema documents: the README configuration table (between its
 * markers) and config/switchboard.example.yaml. `npm run docs:config`; a unit test fails when
 * the committed files differ from what this writes.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { configTable, exampleYaml } from '../src/config/docs';

export const ROOT = path.resolve(__dirname, '../..');
export const README = path.join(ROOT, 'README.md');
export const EXAMPLE = path.join(ROOT, 'config/switchboard.example.yaml');
export const TABLE_START = '<!-- config-table: generated from src/config/schema.ts by npm run docs:config -->';
export const TABLE_END = '<!-- /config-table -->';

/** The README with its table section replaced by `table`. */
export function withTable(readme: string, table: string): string {
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  if (start < 0 || end < start) throw new Error(`README.md has no ${TABLE_START} … ${TABLE_END} section`);
  return `${readme.slice(0, start + TABLE_START.length)}\n${table}\n${readme.slice(end)}`;
}

if (require.main === module) {
  writeFileSync(README, withTable(readFileSync(README, 'utf8'), configTable()));
  writeFileSync(EXAMPLE, exampleYaml());
  process.stdout.write(`wrote ${path.relative(ROOT, README)} (configuration table) and ${path.relative(ROOT, EXAMPLE)}\n`);
}
