/**
 * From the syntax tree to the plain spec object (the JSON contract) and the
 * source span of every part of it.
 *
 * This is a purely syntactic mapping: no name resolution, no type checks, no
 * defaults; schema validation and lowering report semantic errors at the
 * recorded spans. The only layer knowledge used is `positional` (which
 * attribute `dense(64)` means). Errors raised here are the ones the JSON form
 * cannot even express: duplicate keys, input references in a later call of a
 * chain, positional arguments with no attribute to go to, two `output`
 * statements or `train` blocks.
 *
 *   y = add(x, b) -> relu
 *   => {"type": "add", "inputs": ["x", "b"]}, {"type": "relu", "name": "y"}
 */
import { fail, q, suggest, type DiagnosticCode } from '../../diagnostics/diagnostic.js';
import { span } from '../../diagnostics/source.js';
import { getLayer, layerTypes } from '../../ops/registry.js';
import { pointer, type SpecLocations, type SpecPath } from '../locations.js';
import type { ArgNode, CallNode, MemberNode, ModelNode, NameNode, Range, Statement, ValueNode } from './ast.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** A statement (or `train` entry) for comment attachment, keyed by the pointer of its first spec entry. */
export interface Anchor extends Range {
  readonly key: string;
  /** Statements inside a block (`model`, `train`). */
  readonly children?: readonly Anchor[];
}

/** Sets an own property, even for `__proto__`. */
function put(obj: JsonObject, key: string, value: Json): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function has(obj: JsonObject, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(obj, key);
}

/** Keys that lead a layer entry, in canonical order, whatever order they are written in. */
const headKeys = ['type', 'reuse', 'name', 'inputs'];

export class SpecBuilder {
  private outputSeen: Range | undefined;
  private trainSeen: Range | undefined;

  constructor(private readonly locs: SpecLocations) {}

  private error(code: DiagnosticCode, message: string, at: Range): never {
    fail(code, message, span(this.locs.file, at.start, at.end));
  }

  private line(at: Range): number {
    return this.locs.file.position(at.start).line;
  }

  /** The spec of one model, and its statements as anchors for comments. */
  model(model: ModelNode): { spec: JsonObject; anchor: Anchor } {
    this.locs.set([], model.start, model.end);
    this.locs.set(['name'], model.name.start, model.name.end);
    const inputs: Json[] = [];
    const layers: Json[] = [];
    const rest: JsonObject = {};
    const anchors = model.body.map((s) => this.statement(s, inputs, layers, rest));
    const spec: JsonObject = { name: model.name.name, inputs, layers };
    if (has(rest, 'outputs')) spec['outputs'] = rest['outputs']!;
    if (has(rest, 'training')) spec['training'] = rest['training']!;
    return { spec, anchor: { key: '', start: model.start, end: model.end, children: anchors } };
  }

  private statement(s: Statement, inputs: Json[], layers: Json[], rest: JsonObject): Anchor {
    switch (s.kind) {
      case 'input': {
        const path = ['inputs', inputs.length];
        this.locs.set(path, s.start, s.end, s.keyword.start, s.keyword.end);
        this.locs.set([...path, 'name'], s.name.start, s.name.end);
        inputs.push({ name: s.name.name, shape: this.value(s.shape, [...path, 'shape']) });
        return { key: pointer(path), start: s.start, end: s.end };
      }
      case 'output': {
        if (this.outputSeen) this.error('syntax', `a model has one 'output' statement (the first is on line ${this.line(this.outputSeen)})`, s.keyword);
        this.outputSeen = s.keyword;
        this.locs.set(['outputs'], s.start, s.end, s.keyword.start, s.keyword.end);
        rest['outputs'] = s.names.map((n, j) => this.name(n, ['outputs', j]));
        return { key: '/outputs', start: s.start, end: s.end };
      }
      case 'train': {
        if (this.trainSeen) this.error('syntax', `a model has one 'train' block (the first is on line ${this.line(this.trainSeen)})`, s.keyword);
        this.trainSeen = s.keyword;
        this.locs.set(['training'], s.start, s.end, s.keyword.start, s.keyword.end);
        rest['training'] = this.members(s.entries, ['training'], {});
        const children = s.entries.map((e) => ({ key: pointer(['training', e.key.name]), start: e.start, end: e.end }));
        return { key: '/training', start: s.start, end: s.end, children };
      }
      case 'layer': {
        const first = layers.length;
        s.calls.forEach((call, k) => {
          const last = k === s.calls.length - 1;
          layers.push(this.layer(call, ['layers', layers.length], k > 0, last ? s.target : null));
        });
        return { key: pointer(['layers', first]), start: s.start, end: s.end };
      }
    }
  }

  private name(n: NameNode, path: SpecPath): string {
    this.locs.set(path, n.start, n.end);
    return n.name;
  }

  /** A value; `key` is the span of its key when it is an object member or attribute. */
  private value(node: ValueNode, path: SpecPath, key?: Range): Json {
    this.locs.set(path, node.start, node.end, key?.start, key?.end);
    switch (node.kind) {
      case 'name':
        return node.name;
      case 'string':
      case 'number':
      case 'literal':
        return node.value;
      case 'list':
        return node.items.map((item, i) => this.value(item, [...path, i]));
      case 'object':
        return this.members(node.members, path, {});
      case 'call': {
        const obj: JsonObject = {};
        put(obj, 'type', node.callee.name);
        this.locs.set([...path, 'type'], node.callee.start, node.callee.end, node.callee.start, node.callee.end);
        const members = node.args.map((a) => (a.kind === 'keyword' ? a : this.positionalInValue(node.callee, a)));
        return this.members(members, path, obj);
      }
    }
  }

  private positionalInValue(callee: NameNode, arg: ArgNode): never {
    this.error('syntax', `a call in a value takes keyword arguments only: ${callee.name}(key: value, ...)`, arg);
  }

  /** `key: value` members into `obj`; a key given twice is an error. */
  private members(members: readonly MemberNode[], path: SpecPath, obj: JsonObject): JsonObject {
    for (const m of members) {
      const key = m.key.name;
      if (has(obj, key)) this.error('syntax', `duplicate key ${q(key)}`, m.key);
      put(obj, key, this.value(m.value, [...path, key], m.key));
    }
    return obj;
  }

  /** One call of a chain; `later` for calls after the first, `target` for the `name =` of the last. */
  private layer(call: CallNode, path: SpecPath, later: boolean, target: NameNode | null): JsonObject {
    this.locs.set(path, call.start, call.end);
    const fields: JsonObject = {};
    const callee = call.callee;
    const headKey = call.reuse ? 'reuse' : 'type';
    put(fields, headKey, callee.name);
    this.locs.set([...path, headKey], callee.start, callee.end, call.reuse?.start ?? callee.start, call.reuse?.end ?? callee.end);
    if (target) {
      put(fields, 'name', target.name);
      this.locs.set([...path, 'name'], target.start, target.end, target.start, target.end);
    }
    const byPosition = this.positionals(call, path, later, fields);
    for (const arg of call.args) {
      if (arg.kind === 'keyword') this.keyword(call, arg, path, later, fields, target, byPosition);
    }
    // Head keys first, in canonical order; attributes as written.
    const entry: JsonObject = {};
    for (const k of headKeys) if (has(fields, k)) put(entry, k, fields[k]!);
    for (const k of Object.keys(fields)) if (!headKeys.includes(k)) put(entry, k, fields[k]!);
    return entry;
  }

  /** Positional arguments: names are input references, other values positional attributes (whose names it returns). */
  private positionals(call: CallNode, path: SpecPath, later: boolean, fields: JsonObject): readonly string[] {
    const firstKeyword = call.args.findIndex((a) => a.kind === 'keyword');
    const positional = call.args.filter((a) => a.kind === 'positional');
    const misplaced = call.args.find((a, i) => a.kind === 'positional' && firstKeyword >= 0 && i > firstKeyword);
    if (misplaced) this.error('syntax', 'positional argument after keyword arguments', misplaced);

    const refs = positional.filter((a) => a.value.kind === 'name').map((a) => a.value as NameNode);
    if (refs.length > 0) {
      if (later) this.laterInputs(refs[0]!, true);
      put(fields, 'inputs', refs.map((r, j) => this.name(r, [...path, 'inputs', j])));
      this.locs.set([...path, 'inputs'], refs[0]!.start, refs[refs.length - 1]!.end);
    }
    const literals = positional.filter((a) => a.value.kind !== 'name');
    if (literals.length === 0) return [];
    const names = this.positionalNames(call, literals).slice(0, literals.length);
    literals.forEach((a, i) => put(fields, names[i]!, this.value(a.value, [...path, names[i]!], a.value)));
    return names;
  }

  /** The attribute names of a call's positional literals, or a located error. */
  private positionalNames(call: CallNode, literals: readonly ArgNode[]): readonly string[] {
    const type = call.callee.name;
    if (call.reuse) this.error('syntax', `reuse takes only input references and 'name:'`, literals[0]!);
    const def = getLayer(type);
    if (!def) {
      this.error('unknownLayer', `unknown layer type ${q(type)}${suggest(type, layerTypes())}`, call.callee);
    }
    const names = def.positional ?? [];
    if (literals.length > names.length) {
      const takes = names.length === 0
        ? 'no positional attributes'
        : `${names.length} positional attribute${names.length === 1 ? '' : 's'} (${names.join(', ')})`;
      this.error('attributeType', `${type} takes ${takes}, got ${literals.length}`, literals[names.length]!);
    }
    return names;
  }

  private keyword(
    call: CallNode,
    arg: MemberNode,
    path: SpecPath,
    later: boolean,
    fields: JsonObject,
    target: NameNode | null,
    byPosition: readonly string[],
  ): void {
    const key = arg.key.name;
    if (call.reuse && key !== 'name' && key !== 'inputs') {
      this.error('unknownAttribute', `reuse takes only input references and 'name:', not ${q(key)}`, arg.key);
    }
    if (key === 'inputs' && later) this.laterInputs(arg.key, false);
    if (has(fields, key)) {
      const why =
        key === 'name' && target ? ` (the layer is already named by '${target.name} =')`
        : key === 'inputs' ? ' (input references are given positionally)'
        : key === 'type' || key === 'reuse' ? ` (the call already gives ${q(key)})`
        : byPosition.includes(key) ? ' (also given positionally)'
        : '';
      this.error('syntax', `duplicate key ${q(key)}${why}`, arg.key);
    }
    put(fields, key, this.value(arg.value, [...path, key], arg.key));
  }

  /** Inputs (`isRef`: a bare-name reference, often meant as a string) given to a call after the first of a chain. */
  private laterInputs(at: NameNode, isRef: boolean): never {
    const rule = 'only the first call of a chain takes inputs (the others take the previous layer)';
    this.error(
      'syntax',
      isRef ? `${q(at.name)} is an input reference, but ${rule}; for a string attribute write 'key: ${at.name}'` : rule,
      at,
    );
  }
}
