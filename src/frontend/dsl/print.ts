/**
 * The canonical `.nn` text of a spec: what `convert --to nn` and `fmt` write.
 * It parses back to the same spec (`parseDsl(printDsl(s)).spec` equals
 * `canonicalize(s)`), and printing is a fixpoint of parsing.
 *
 * Layout: `input` lines, layer statements, `output` (when given), then a
 * `train { ... }` block with one entry per line; two-space indentation.
 * Layers group into chains by a rule that needs only the JSON: a layer with
 * explicit `inputs` starts a statement, later layers without `inputs` join it
 * with `->`, and a named layer ends it (printed `name = first -> ... -> last`).
 * Other layers stand alone, one per line.
 *
 *   {"type": "conv2d", "inputs": ["x"], "filters": 16}, {"type": "relu", "name": "a"}
 *   =>  a = conv2d(x, filters: 16) -> relu
 *
 * Positional attributes: the leading attributes that match the layer's
 * `positional` list, as long as they are not strings (a bare word argument
 * would read as an input reference) and the call names no inputs. `$schema` has no DSL form: it is dropped.
 */
import { ModelcError } from '../../diagnostics/diagnostic.js';
import { getLayer } from '../../ops/registry.js';
import { canonicalize } from '../canonical.js';
import { pointer } from '../locations.js';
import type { ModelSpec } from '../spec.js';
import { formatName, isBare, isIdentifier } from './ast.js';
import { emptyComments, type DslComments } from './comments.js';

type Obj = { [key: string]: unknown };

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Own entries, without `undefined` values (which JSON does not have). */
function entries(obj: Obj): [string, unknown][] {
  return Object.entries(obj).filter(([, v]) => v !== undefined);
}

function unprintable(what: string): never {
  throw new ModelcError({ code: 'schema', message: `cannot write this spec as .nn: ${what}` });
}

function name(v: unknown, what: string): string {
  return typeof v === 'string' ? formatName(v) : unprintable(`${what} is not a string`);
}

/** A value: JSON with bare identifier strings and `type(k: v)` for `{type, ...}` objects. */
export function formatValue(v: unknown): string {
  if (v === null || typeof v === 'boolean') return String(v);
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : unprintable(`${v} is not a JSON number`);
  if (typeof v === 'string') return isBare(v) ? v : JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(formatValue).join(', ')}]`;
  if (!isObject(v)) return unprintable(`a ${typeof v} value`);
  const es = entries(v);
  const [first, ...rest] = es;
  if (first?.[0] === 'type' && typeof first[1] === 'string') return `${formatName(first[1])}(${rest.map(keyword).join(', ')})`;
  return `{${es.map(keyword).join(', ')}}`;
}

function keyword([k, v]: [string, unknown]): string {
  return `${formatName(k)}: ${formatValue(v)}`;
}

function hasInputs(layer: Obj): boolean {
  return layer['inputs'] !== undefined;
}

/** Indices of the layers of each statement, by the chain rule above. */
export function chains(layers: readonly Obj[]): number[][] {
  const groups: number[][] = [];
  let open = false;
  layers.forEach((layer, i) => {
    if (open && !hasInputs(layer)) groups[groups.length - 1]!.push(i);
    else {
      groups.push([i]);
      open = hasInputs(layer);
    }
    if (layer['name'] !== undefined) open = false;
  });
  return groups;
}

/** One call of a chain; `named` when its string name is printed as the statement's `name =`. */
function formatCall(layer: Obj, named: boolean): string {
  const typed = typeof layer['type'] === 'string';
  if (!typed && (layer['type'] !== undefined || typeof layer['reuse'] !== 'string')) {
    unprintable('a layer entry without a string "type" or "reuse"');
  }
  const head = typed ? formatName(layer['type'] as string) : `reuse ${formatName(layer['reuse'] as string)}`;
  const refs: string[] = [];
  const rest: [string, unknown][] = [];
  for (const [k, v] of entries(layer)) {
    if (k === 'type' || (k === 'reuse' && !typed) || (k === 'name' && named)) continue;
    const inputList = k === 'inputs' && Array.isArray(v) && v.length > 0 && v.every((i) => typeof i === 'string');
    if (inputList) refs.push(...(v as string[]).map(formatName));
    else rest.push([k, v]);
  }
  // Attributes (head keys aside) are in canonical order; print the matching non-string prefix
  // positionally, unless the call names its inputs: `conv2d(x, filters: 16)` reads better than
  // `conv2d(x, 16)`, where 16 could be taken for a second input.
  const positional = typed && refs.length === 0 ? (getLayer(layer['type'] as string)?.positional ?? []) : [];
  const attrs = rest.filter(([k]) => !['reuse', 'name', 'inputs'].includes(k));
  let n = 0;
  while (n < positional.length && n < attrs.length && attrs[n]![0] === positional[n] && typeof attrs[n]![1] !== 'string') n++;
  const byPosition = new Set(attrs.slice(0, n).map(([k]) => k));
  const args = [
    ...refs,
    ...attrs.slice(0, n).map(([, v]) => formatValue(v)),
    ...rest.filter(([k]) => !byPosition.has(k)).map(keyword),
  ];
  return args.length > 0 ? `${head}(${args.join(', ')})` : head;
}

function formatChain(layers: readonly Obj[]): string {
  const last = layers[layers.length - 1]!;
  const named = typeof last['name'] === 'string';
  const calls = layers.map((l) => formatCall(l, named && l === last));
  return (named ? `${formatName(last['name'] as string)} = ` : '') + calls.join(' -> ');
}

/** Accumulates lines, placing comments around statements and blocks. */
class Lines {
  readonly out: string[] = [];
  private readonly used = new Set<string>();

  constructor(private readonly comments: DslComments) {}

  /** Leading comments (after a blank line if the source had one), then `text`, then the trailing comment. */
  statement(key: string, indent: string, text: string, first: boolean): void {
    this.before(key, indent, first);
    this.out.push(indent + text + this.trailing(key));
  }

  open(key: string, indent: string, header: string, first: boolean): void {
    this.before(key, indent, first);
    this.out.push(indent + header);
  }

  /** Comments kept for the block's end (and any whose statement is gone), then `}`. */
  close(key: string, indent: string, strays: readonly string[] = []): void {
    for (const t of [...strays, ...(this.comments.closing.get(key) ?? [])]) this.out.push(`${indent}  #${oneLine(t)}`);
    this.out.push(`${indent}}${this.trailing(key)}`);
  }

  /** Comments of statements that were not printed (the spec changed since parsing). */
  strays(): string[] {
    const lost = [...this.comments.leading].filter(([k]) => !this.used.has(k)).flatMap(([, ts]) => ts);
    return [...lost, ...[...this.comments.trailing].filter(([k]) => !this.used.has(k)).map(([, t]) => t)];
  }

  private before(key: string, indent: string, first: boolean): void {
    this.used.add(key);
    if (!first && this.comments.blankBefore.has(key)) this.out.push('');
    for (const t of this.comments.leading.get(key) ?? []) this.out.push(`${indent}#${oneLine(t)}`);
  }

  private trailing(key: string): string {
    this.used.add(key);
    const t = this.comments.trailing.get(key);
    return t === undefined ? '' : `  #${oneLine(t)}`;
  }
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}

export function printDsl(spec: ModelSpec, comments: DslComments = emptyComments()): string {
  const s = canonicalize(spec) as unknown as Obj;
  const lines = new Lines(comments);
  const modelName = typeof s['name'] === 'string' && isIdentifier(s['name']) ? s['name'] : name(s['name'], 'the model name');
  lines.open('', '', `model ${modelName} {`, true);
  const body: [string, string][] = [];
  const inputs = Array.isArray(s['inputs']) ? (s['inputs'] as unknown[]) : unprintable('"inputs" is not a list');
  inputs.forEach((input, i) => {
    if (!isObject(input) || input['shape'] === undefined) unprintable(`input ${i} has no shape`);
    body.push([pointer(['inputs', i]), `input ${name(input['name'], `the name of input ${i}`)}: ${formatValue(input['shape'])}`]);
  });
  const layers = Array.isArray(s['layers']) ? (s['layers'] as unknown[]) : unprintable('"layers" is not a list');
  const entriesOk = layers.map((l, i) => (isObject(l) ? l : unprintable(`layer ${i} is not an object`)));
  for (const group of chains(entriesOk)) {
    body.push([pointer(['layers', group[0]!]), formatChain(group.map((i) => entriesOk[i]!))]);
  }
  if (s['outputs'] !== undefined) {
    const outputs = Array.isArray(s['outputs']) ? s['outputs'] : unprintable('"outputs" is not a list');
    const names = outputs.map((o, j) => name(o, `output ${j}`)).join(', ');
    body.push(['/outputs', names ? `output ${names}` : 'output']);
  }
  body.forEach(([key, text], i) => lines.statement(key, '  ', text, i === 0));
  if (s['training'] !== undefined) printTraining(lines, s['training'], body.length === 0);
  lines.close('', '', lines.strays());
  for (const t of comments.footer) lines.out.push(`#${oneLine(t)}`);
  return lines.out.join('\n') + '\n';
}

function printTraining(lines: Lines, training: unknown, first: boolean): void {
  if (!isObject(training)) unprintable('"training" is not an object');
  const es = entries(training);
  lines.open('/training', '  ', 'train {', first);
  es.forEach((e, i) => lines.statement(pointer(['training', e[0]]), '    ', keyword(e), i === 0));
  lines.close('/training', '  ');
}
