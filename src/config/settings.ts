import { ConfigSchema, type Cli } from './schema';

/**
 * The flags and environment variables, read off the schema's `cli` annotations: one
 * `Setting` per annotated node, in schema order. --help, the flag parser, the environment
 * reader and the README table all use this list.
 */

export type ValueType = 'string' | 'integer' | 'boolean' | 'duration' | 'list';

export interface Setting extends Cli {
  /** Field path in the config file, e.g. `proxy.timeouts.connect`. */
  path: string;
  type: ValueType;
  help: string;
  node: SchemaNode;
}

/** What this module reads of a schema node. */
export interface SchemaNode {
  type?: string | string[];
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  anyOf?: SchemaNode[];
  default?: unknown;
  defaultText?: string;
  description?: string;
  example?: string;
  duration?: string;
  cli?: Cli;
}

/** The environment variable naming the config file (the `--config` flag wins over it). */
export const CONFIG_ENV = 'SWITCHBOARD_CONFIG';

export function envName(setting: Pick<Setting, 'flag'>): string {
  return `SWITCHBOARD_${setting.flag.toUpperCase().replace(/-/g, '_')}`;
}

/** Every node of the schema with its dotted path, depth first, in declaration order. */
export function* schemaNodes(node: SchemaNode = ConfigSchema as unknown as SchemaNode, path = ''): Generator<[string, SchemaNode]> {
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const childPath = path ? `${path}.${key}` : key;
    yield [childPath, child];
    if (child.properties !== undefined) yield* schemaNodes(child, childPath);
  }
}

export function valueType(node: SchemaNode): ValueType {
  if (node.duration !== undefined) return 'duration';
  if (node.type === 'array') return 'list';
  if (node.type === 'integer') return 'integer';
  if (node.type === 'boolean') return 'boolean';
  return 'string';
}

export const SETTINGS: readonly Setting[] = Object.freeze(
  [...schemaNodes()]
    .filter(([, node]) => node.cli !== undefined)
    .map(([path, node]): Setting => {
      const cli = node.cli as Cli;
      return { ...cli, path, type: valueType(node), help: cli.help ?? firstSentence(node.description ?? path), node };
    }),
);

/** The node at a dotted path (undefined if there is none). */
export function nodeAt(path: string): SchemaNode | undefined {
  let node: SchemaNode | undefined = ConfigSchema as unknown as SchemaNode;
  for (const key of path.split('.')) node = node?.properties?.[key];
  return node;
}

/** The default of a setting as the schema declares it (for --help and the docs). */
export function settingDefault(path: string): unknown {
  return nodeAt(path)?.default;
}

/** How a node's default reads: the literal default, its `defaultText`, or "none". */
export function defaultText(node: SchemaNode): string {
  if (node.defaultText !== undefined) return node.defaultText;
  const value = node.default;
  if (value === undefined || value === '') return 'none';
  if (Array.isArray(value)) return value.length === 0 ? 'none' : value.join(',');
  return String(value);
}

function firstSentence(text: string): string {
  const end = text.indexOf('. ');
  return (end < 0 ? text.replace(/\.$/, '') : text.slice(0, end)).replace(/`/g, '');
}
