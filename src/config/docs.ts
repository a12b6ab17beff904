import YAML from 'yaml';
import { ConfigSchema } from './schema';
import { CONFIG_ENV, SETTINGS, envName, schemaNodes, type SchemaNode, type Setting } from './settings';

/**
 * The README configuration table and config/switchboard.example.yaml, generated from the
 * schema (`npm run docs:config` writes them; test/unit/config-docs.test.ts fails when the
 * committed ones differ), so that no default is written down twice.
 */

const WIDTH = 96;

/** The Markdown table of every setting: field, default, flag, environment variable. */
export function configTable(): string {
  const settings = new Map(SETTINGS.map((s) => [s.path, s]));
  const rows = ['| Field | Default | Flag | Environment |', '| --- | --- | --- | --- |'];
  for (const [path, node] of schemaNodes()) {
    const setting = settings.get(path);
    const fileOnly = setting === undefined && isFileOnlyLeaf(path, node);
    if (setting === undefined && !fileOnly) continue;
    const shown =
      path === 'proxy.defaults'
        ? 'see [When instances fail](#when-instances-fail)'
        : (node.defaultText ?? (node.default === undefined ? 'none' : `\`${scalar(node.default)}\``));
    const flag = setting ? `\`--${setting.flag}\`${roleNote(setting)}` : '(file only)';
    const env = setting ? `\`${envName(setting)}\`${setting.type === 'list' ? ' (comma-separated)' : ''}` : '(file only)';
    rows.push(`| \`${path}\` | ${shown} | ${flag} | ${env} |`);
  }
  return rows.join('\n');
}

/** Routes, the service policies and their overrides are set in the file only. */
function isFileOnlyLeaf(path: string, node: SchemaNode): boolean {
  return path.split('.').length === 2 && node.cli === undefined && (node.type === 'array' || path === 'proxy.defaults' || path === 'proxy.services');
}

function roleNote(setting: Setting): string {
  const serving = ['all', 'registry', 'proxy'];
  if (setting.roles.length >= 3 || (setting.roles.length === 2 && setting.roles.includes('all'))) return '';
  const roles = setting.roles.filter((r) => serving.includes(r) || r === 'register');
  return ` (${roles.join('/')} role${roles.length > 1 ? 's' : ''})`;
}

/** config/switchboard.example.yaml: every field with its default and what it does. */
export function exampleYaml(): string {
  const lines = [
    '# Switchboard example configuration (what `npm start` runs). Generated from the schema',
    '# (src/config/schema.ts) by `npm run docs:config`: edit the schema, not this file.',
    '#',
    '# Every field is optional; the values below are the defaults. Precedence:',
    '#   this file  <  SWITCHBOARD_* environment variables  <  command-line flags',
    `# (the file itself: --config FILE or ${CONFIG_ENV}). Unknown fields are rejected, and an`,
    '# invalid value stops the process with exit code 2 and a message naming the file, the field',
    '# path and the reason.',
    '#',
    '# Durations are Go-style strings ("250ms", "5s", "1m30s", "1h") or plain numbers of',
    '# milliseconds. Listen addresses are host:port (port 0 = any free port; "[::1]:8080" for IPv6).',
  ];
  const settings = new Map(SETTINGS.map((s) => [s.path, s]));
  const walk = (node: SchemaNode, path: string, indent: string): void => {
    let first = path !== '';
    for (const [key, child] of Object.entries(node.properties ?? {})) {
      const childPath = path ? `${path}.${key}` : key;
      if (!first) lines.push('');
      first = false;
      comment(lines, indent, describe(child, settings.get(childPath)));
      if (child.properties !== undefined && child.type === 'object' && !isLeafObject(child)) {
        // A section whose fields are all commented out would read as null: say {} instead.
        lines.push(hasDefault(child) ? `${indent}${key}:` : `${indent}${key}: {}`);
        walk(child, childPath, `${indent}  `);
        continue;
      }
      if (child.default === undefined) {
        if (child.example !== undefined) lines.push(`${indent}# ${key}: ${child.example}`);
        continue;
      }
      lines.push(`${indent}${key}: ${scalar(child.default)}`);
      if (child.example !== undefined) {
        lines.push(`${indent}# ${key}:`);
        for (const line of child.example.split('\n')) lines.push(`${indent}#   ${line}`);
      }
    }
  };
  walk(ConfigSchema as unknown as SchemaNode, '', '');
  return `${lines.join('\n').replace(/\n{3,}/g, '\n\n')}\n`;
}

function hasDefault(node: SchemaNode): boolean {
  return Object.values(node.properties ?? {}).some((child) => child.default !== undefined || hasDefault(child));
}

/** An object written out as one value (`{}`) rather than field by field. */
function isLeafObject(node: SchemaNode): boolean {
  return Object.keys(node.properties ?? {}).length === 0;
}

function describe(node: SchemaNode, setting: Setting | undefined): string {
  const parts = [node.description ?? ''];
  if (setting) parts.push(`Flag --${setting.flag}, env ${envName(setting)}${setting.type === 'list' ? ' (comma-separated)' : ''}.`);
  return parts.filter((p) => p !== '').join(' ');
}

function comment(lines: string[], indent: string, text: string): void {
  if (text === '') return;
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && indent.length + 2 + line.length + 1 + word.length > WIDTH) {
      lines.push(`${indent}# ${line}`);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(`${indent}# ${line}`);
}

/** A value in YAML flow style, quoted only where YAML would read it as something else. */
function scalar(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(scalar).join(', ')}]`;
  if (typeof value === 'object' && value !== null) return Object.keys(value).length === 0 ? '{}' : JSON.stringify(value);
  if (typeof value !== 'string') return String(value);
  return /^[\w./:+-]+$/.test(value) && YAML.parse(value) === value ? value : JSON.stringify(value);
}
