import { badRequest } from '../../errors';

/**
 * Consul's `?filter=` expressions (go-bexpr), the subset clients use: `==`, `!=`, `in`,
 * `not in`, `contains`, `not contains`, `matches`, `not matches`, `is empty`, `is not empty`,
 * `and`, `or`, `not` and parentheses, over selectors of the endpoint's JSON shape
 * (`Service.Tags`, `Service.Meta.env`, `Checks.Status`). A selector that passes through a
 * list selects every element (`Checks.Status == critical` holds when any check is critical).
 * Values are quoted ("…" or `…`), numbers, true/false, or bare words. An expression that does
 * not parse is a 400 naming the position.
 *
 * `matches` uses JavaScript regular expressions: Go's RE2 runs in linear time, these need
 * not, so patterns with a quantified group that is itself quantified, or back-references,
 * are refused (a filter must not be a way to spend the registry's CPU).
 */

type Value = string | number | boolean;

type Node =
  | { kind: 'and' | 'or'; left: Node; right: Node }
  | { kind: 'not'; operand: Node }
  | { kind: 'compare'; op: '==' | '!=' | 'contains' | 'matches'; negate: boolean; selector: string[]; value: Value; regex?: RegExp }
  | { kind: 'empty'; negate: boolean; selector: string[] };

export interface Filter {
  matches(item: unknown): boolean;
}

const MAX_EXPRESSION = 4096;
const MAX_PATTERN = 256;

/** Parses `?filter=`; undefined when absent or empty. Throws 400 `filter` with the position. */
export function parseFilter(value: unknown): Filter | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string') throw badRequest('filter', 'must be given once');
  if (value.length > MAX_EXPRESSION) throw badRequest('filter', `longer than ${MAX_EXPRESSION} characters`);
  const root = new Parser(value).parse();
  return { matches: (item) => evaluate(root, item) };
}

/** Keeps the items the filter matches (all of them without a filter). */
export function applyFilter<T>(filter: Filter | undefined, items: readonly T[], shape: (item: T) => unknown = (i) => i): T[] {
  return filter === undefined ? [...items] : items.filter((item) => filter.matches(shape(item)));
}

// ---- tokens -----------------------------------------------------------------------------

type Token = { type: 'word' | 'string' | 'number' | 'op' | 'paren'; text: string; at: number };

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i];
    if (/\s/.test(c)) {
      i++;
    } else if (c === '(' || c === ')') {
      tokens.push({ type: 'paren', text: c, at: i++ });
    } else if (c === '=' || c === '!') {
      if (source[i + 1] !== '=') throw invalid(`unexpected "${c}"`, i);
      tokens.push({ type: 'op', text: `${c}=`, at: i });
      i += 2;
    } else if (c === '"' || c === '`') {
      const start = i++;
      let text = '';
      while (i < source.length && source[i] !== c) {
        if (c === '"' && source[i] === '\\' && i + 1 < source.length) i++;
        text += source[i++];
      }
      if (i >= source.length) throw invalid('unterminated string', start);
      i++;
      tokens.push({ type: 'string', text, at: start });
    } else if (/[-0-9]/.test(c) && /^-?\d/.test(source.slice(i, i + 2))) {
      const m = /^-?\d+(\.\d+)?/.exec(source.slice(i)) as RegExpExecArray;
      tokens.push({ type: 'number', text: m[0], at: i });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_.\-/:]*/.exec(source.slice(i)) as RegExpExecArray;
      tokens.push({ type: 'word', text: m[0], at: i });
      i += m[0].length;
    } else {
      throw invalid(`unexpected "${c}"`, i);
    }
  }
  return tokens;
}

// ---- grammar ----------------------------------------------------------------------------

class Parser {
  private readonly tokens: Token[];
  private next = 0;

  constructor(private readonly source: string) {
    this.tokens = tokenize(source);
  }

  parse(): Node {
    const node = this.or();
    const extra = this.peek();
    if (extra !== undefined) throw invalid(`unexpected "${extra.text}"`, extra.at);
    return node;
  }

  private or(): Node {
    let node = this.and();
    while (this.isWord('or')) {
      this.next++;
      node = { kind: 'or', left: node, right: this.and() };
    }
    return node;
  }

  private and(): Node {
    let node = this.unary();
    while (this.isWord('and')) {
      this.next++;
      node = { kind: 'and', left: node, right: this.unary() };
    }
    return node;
  }

  private unary(): Node {
    if (this.isWord('not')) {
      this.next++;
      return { kind: 'not', operand: this.unary() };
    }
    const token = this.peek();
    if (token?.type === 'paren' && token.text === '(') {
      this.next++;
      const inner = this.or();
      const close = this.take();
      if (close?.type !== 'paren' || close.text !== ')') throw invalid('expected ")"', close?.at ?? this.source.length);
      return inner;
    }
    return this.match();
  }

  private match(): Node {
    const first = this.take();
    if (first === undefined) throw invalid('expected an expression', this.source.length);
    // `<value> in <selector>` / `<value> not in <selector>`
    const notIn = this.isWord('not', 0) && this.isWord('in', 1);
    if (this.isWord('in') || notIn) {
      this.next += notIn ? 2 : 1;
      return { kind: 'compare', op: 'contains', negate: notIn, selector: this.selector(), value: valueOf(first) };
    }
    if (first.type !== 'word') throw invalid('expected a selector', first.at);
    const selector = first.text.split('.');
    if (this.isWord('is')) {
      this.next++;
      const negate = this.isWord('not');
      if (negate) this.next++;
      const empty = this.take();
      if (empty?.type !== 'word' || empty.text !== 'empty') throw invalid('expected "empty"', empty?.at ?? this.source.length);
      return { kind: 'empty', negate, selector };
    }
    const negate = this.isWord('not');
    if (negate) this.next++;
    const op = this.take();
    if (op === undefined) throw invalid('expected an operator', this.source.length);
    const known = op.type === 'op' ? op.text : op.type === 'word' ? op.text : '';
    if (!['==', '!=', 'contains', 'matches'].includes(known) || (negate && (known === '==' || known === '!='))) throw invalid(`unknown operator "${op.text}"`, op.at);
    const valueToken = this.take();
    if (valueToken === undefined) throw invalid('expected a value', this.source.length);
    const value = valueOf(valueToken);
    const node: Node = { kind: 'compare', op: known === '!=' ? '==' : (known as '==' | 'contains' | 'matches'), negate: negate || known === '!=', selector, value };
    if (node.op === 'matches') node.regex = compilePattern(String(value), valueToken.at);
    return node;
  }

  private selector(): string[] {
    const token = this.take();
    if (token?.type !== 'word') throw invalid('expected a selector', token?.at ?? this.source.length);
    return token.text.split('.');
  }

  private isWord(word: string, ahead = 0): boolean {
    const token = this.tokens[this.next + ahead];
    return token?.type === 'word' && token.text === word;
  }

  private peek(): Token | undefined {
    return this.tokens[this.next];
  }

  private take(): Token | undefined {
    return this.tokens[this.next++];
  }
}

function valueOf(token: Token): Value {
  if (token.type === 'number') return Number(token.text);
  if (token.type === 'word' && (token.text === 'true' || token.text === 'false')) return token.text === 'true';
  if (token.type === 'word' || token.type === 'string') return token.text;
  throw invalid('expected a value', token.at);
}

function compilePattern(pattern: string, at: number): RegExp {
  if (pattern.length > MAX_PATTERN) throw invalid(`pattern longer than ${MAX_PATTERN} characters`, at);
  if (/\\[1-9]|\\k</.test(pattern)) throw invalid('back-references are not supported', at);
  if (/\)[*+?{]/.test(pattern) && /\([^)]*[*+{][^)]*\)/.test(pattern)) throw invalid('a quantified group containing a quantifier is not supported', at);
  try {
    return new RegExp(pattern);
  } catch (err) {
    throw invalid(`bad pattern: ${(err as Error).message}`, at);
  }
}

function invalid(reason: string, at: number): Error {
  return badRequest('filter', `${reason} at position ${at}`);
}

// ---- evaluation -------------------------------------------------------------------------

const COLLECTION = Symbol('collection');
type Selected = unknown[] & { [COLLECTION]?: true };

function evaluate(node: Node, item: unknown): boolean {
  switch (node.kind) {
    case 'and':
      return evaluate(node.left, item) && evaluate(node.right, item);
    case 'or':
      return evaluate(node.left, item) || evaluate(node.right, item);
    case 'not':
      return !evaluate(node.operand, item);
    case 'empty':
      return isEmpty(select(item, node.selector)) !== node.negate;
    case 'compare':
      return compare(node, select(item, node.selector)) !== node.negate;
  }
}

/** Walks the selector; a list on the way selects from each of its elements. */
function select(item: unknown, path: readonly string[]): unknown {
  let current: unknown = item;
  let collection = false;
  for (const part of path) {
    if (Array.isArray(current)) {
      collection = true;
      current = current.flatMap((element) => {
        const v = field(element, part);
        return v === undefined ? [] : Array.isArray(v) ? v : [v];
      });
    } else {
      current = field(current, part);
    }
  }
  if (collection) {
    const selected = current as Selected;
    selected[COLLECTION] = true;
    return selected;
  }
  return current;
}

function field(value: unknown, name: string): unknown {
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as Record<string, unknown>;
  if (Object.prototype.hasOwnProperty.call(record, name)) return record[name];
  const lower = name.toLowerCase();
  const key = Object.keys(record).find((k) => k.toLowerCase() === lower);
  return key === undefined ? undefined : record[key];
}

function isEmpty(value: unknown): boolean {
  if (value === undefined || value === null || value === '') return true;
  if (Array.isArray(value)) return value.length === 0;
  if (typeof value === 'object') return Object.keys(value).length === 0;
  return false;
}

function compare(node: Extract<Node, { kind: 'compare' }>, selected: unknown): boolean {
  const text = String(node.value);
  const many = Array.isArray(selected) && (selected as Selected)[COLLECTION] === true;
  switch (node.op) {
    case '==':
      return many ? (selected as unknown[]).some((v) => String(v) === text) : selected !== undefined && String(selected) === text;
    case 'matches':
      return many ? (selected as unknown[]).some((v) => typeof v === 'string' && (node.regex as RegExp).test(v)) : typeof selected === 'string' && (node.regex as RegExp).test(selected);
    default:
      // contains: a list holds the value, a string the substring, a map the key.
      if (Array.isArray(selected)) return selected.some((v) => String(v) === text);
      if (typeof selected === 'string') return selected.includes(text);
      if (typeof selected === 'object' && selected !== null) return Object.prototype.hasOwnProperty.call(selected, text);
      return false;
  }
}
