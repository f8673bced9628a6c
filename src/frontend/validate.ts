/**
 * Spec validation against the JSON Schema of src/frontend/spec.ts, with
 * messages located in the source. Keras names are resolved first
 * (keras-names.ts): the spec returned has modelc's canonical names. The model
 * shell is checked first, then each layer entry against its own layer's
 * schema, so that messages name the layer and attribute instead of "no union
 * member matched".
 */
import type { TSchema } from '@sinclair/typebox';
import { Value, type ValueError } from '@sinclair/typebox/value';
import { fail, q, suggest, type DiagnosticCode } from '../diagnostics/diagnostic.js';
import { getLayer, layerTypes } from '../ops/registry.js';
import type { SpecLocations, SpecPath } from './locations.js';
import { resolveKerasNames } from './keras-names.js';
import { layerSchema, ModelShell, ReuseSpec, type ModelSpec } from './spec.js';

export function validateSpec(raw: unknown, loc: SpecLocations): ModelSpec {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    fail('schema', `a model spec must be a JSON object, got ${kind(raw)}`, loc.value([]));
  }
  // Keras names (`max_pooling2d`, `mean_squared_error`) become modelc's here, before any check.
  const obj = resolveKerasNames(raw, loc) as Record<string, unknown>;
  if (Array.isArray(obj['layers']) && obj['layers'].length === 0) {
    fail('emptyModel', `model${typeof obj['name'] === 'string' ? ` ${q(obj['name'])}` : ''} has no layers`, loc.value(['layers']));
  }
  check(ModelShell, obj, [], loc, 'model');
  (obj['layers'] as unknown[]).forEach((entry, i) => validateLayer(entry, ['layers', i], loc));
  return obj as unknown as ModelSpec;
}

function validateLayer(entry: unknown, path: SpecPath, loc: SpecLocations): void {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
    fail('schema', `a layer must be an object with a "type", got ${kind(entry)}`, loc.value(path));
  }
  const e = entry as Record<string, unknown>;
  if ('reuse' in e) return check(ReuseSpec, e, path, loc, 'reuse');
  const type = e['type'];
  if (type === undefined) fail('schema', 'a layer needs a "type" (or "reuse")', loc.value(path));
  if (typeof type !== 'string') fail('schema', `a layer "type" must be a string, got ${kind(type)}`, loc.value([...path, 'type']));
  const def = getLayer(type);
  if (!def) fail('unknownLayer', `unknown layer type ${q(type)}${suggest(type, layerTypes())}`, loc.value([...path, 'type']));
  check(layerSchema(def), e, path, loc, type);
}

/**
 * An object form inside an attribute (an initializer, an optimizer) whose
 * arguments are being checked: `'random_normal' (dense attribute 'kernel_initializer')`.
 */
interface Within {
  readonly type: string;
  readonly owner: string;
}

/** Throws a located diagnostic for the first schema violation of `value`. */
function check(schema: TSchema, value: unknown, base: SpecPath, loc: SpecLocations, subject: string, within?: Within): void {
  const first = Value.Errors(schema, value).First();
  if (!first) return;
  const inner = unionMember(first);
  if (inner) {
    // `{"type": "random_normal", "stdev": 0.1}`: report what is wrong inside the object form.
    const rel = first.path.split('/').slice(1).map((p) => (/^\d+$/.test(p) ? Number(p) : p));
    const type = (first.value as Record<string, unknown>)['type'];
    const owner = subject === 'model' ? q(rel.join('.')) : `${subject} attribute ${q(rel.join('.'))}`;
    return check(inner, first.value, [...base, ...rel], loc, subject, typeof type === 'string' ? { type, owner } : within);
  }
  const { code, message, path, atKey } = within ? explainArgument(first, base, within) : explain(first, base, subject);
  fail(code, message, atKey ? loc.key(path) : loc.value(path));
}

/** A violation inside an object form: `random_normal argument 'stddev' (dense attribute 'kernel_initializer'): ...`. */
function explainArgument(err: ValueError, base: SpecPath, within: Within): Explained {
  const rel = err.path.split('/').slice(1).map((p) => (/^\d+$/.test(p) ? Number(p) : p.replace(/~1/g, '/').replace(/~0/g, '~')));
  const path = [...base, ...rel];
  const key = String(rel[rel.length - 1] ?? '');
  const code: DiagnosticCode = within.owner.startsWith("'") ? 'schema' : 'attributeType';
  if (err.message === 'Unexpected property') {
    const known = Object.keys((err.schema as { properties?: object }).properties ?? {}).filter((k) => k !== 'type');
    const takes = known.length > 0 ? `takes ${known.map(q).join(', ')}` : 'takes no arguments';
    return { code, message: `unknown argument ${q(key)} of ${within.type} (${within.owner}); ${within.type} ${takes}${suggest(key, known)}`, path, atKey: true };
  }
  return { code, message: `${within.type} argument ${q(rel.join('.'))} (${within.owner}): ${expected(err.schema)}, got ${show(err.value)}`, path, atKey: false };
}

/**
 * For a value that matches no member of a union, the one object member it was
 * evidently meant for (same `type`, or the only object form), if any.
 */
function unionMember(err: ValueError): TSchema | undefined {
  const members = err.schema['anyOf'] as TSchema[] | undefined;
  const v = err.value as Record<string, unknown>;
  if (!members || typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const objects = members.filter((m) => m['type'] === 'object');
  const typed = objects.filter((m) => Value.Check(m['properties']?.['type'] ?? {}, v['type']));
  const candidates = typed.length > 0 ? typed : objects;
  return candidates.length === 1 ? candidates[0] : undefined;
}

interface Explained {
  code: DiagnosticCode;
  message: string;
  path: SpecPath;
  atKey: boolean;
}

function explain(err: ValueError, base: SpecPath, subject: string): Explained {
  const rel = err.path.split('/').slice(1).map((p) => (/^\d+$/.test(p) ? Number(p) : p.replace(/~1/g, '/').replace(/~0/g, '~')));
  const path = [...base, ...rel];
  const key = String(rel[rel.length - 1] ?? '');
  const isAttr = subject !== 'model' && rel.length === 1;
  const field = isAttr ? `${subject} attribute ${q(key)}` : `${q(rel.join('.') || subject)}`;
  if (err.message === 'Unexpected property') {
    const known = Object.keys((err.schema as { properties?: object }).properties ?? {});
    const title = (err.schema as { title?: string }).title;
    const where =
      subject === 'model' ? (title ? `in ${title}` : 'in a model spec') : `for ${subject === 'reuse' ? 'a reuse entry' : `layer type ${q(subject)}`}`;
    const code: DiagnosticCode = subject === 'model' ? 'schema' : 'unknownAttribute';
    return { code, message: `unknown ${isAttr ? 'attribute' : 'key'} ${q(key)} ${where}${suggest(key, known)}`, path, atKey: true };
  }
  if (err.message === 'Expected required property') {
    const parentPath = path.slice(0, -1);
    const owner = subject === 'model' && parentPath.length === base.length ? 'the model spec' : subject === 'model' ? q(rel.slice(0, -1).join('.')) : subject;
    return { code: 'schema', message: `${owner} is missing ${isAttr ? 'attribute' : 'key'} ${q(key)}`, path: parentPath, atKey: false };
  }
  const code: DiagnosticCode = subject === 'model' ? 'schema' : 'attributeType';
  return { code, message: `${field}: ${expected(err.schema)}, got ${show(err.value)}`, path, atKey: false };
}

/** What a schema accepts, in words. */
function expected(schema: TSchema): string {
  const members = schema['anyOf'] as TSchema[] | undefined;
  if (members && members.every((m) => m['const'] !== undefined)) {
    return `expected one of ${members.map((m) => q(String(m['const']))).join(', ')}`;
  }
  if (schema['const'] !== undefined) return `expected ${q(String(schema['const']))}`;
  if (members) return `expected ${schema['description'] ?? members.map((m) => expected(m).replace(/^expected /, '')).join(' or ')}`;
  const bounds: string[] = [];
  const num = (n: number) => (Math.abs(n) >= 1e15 ? n.toExponential().replace('e+', 'e') : String(n));
  if (schema['minimum'] !== undefined) bounds.push(`>= ${num(schema['minimum'])}`);
  if (schema['exclusiveMinimum'] !== undefined) bounds.push(`> ${num(schema['exclusiveMinimum'])}`);
  if (schema['maximum'] !== undefined) bounds.push(`${bounds.length > 0 ? 'and ' : ''}<= ${num(schema['maximum'])}`);
  if (schema['exclusiveMaximum'] !== undefined) bounds.push(`${bounds.length > 0 ? 'and ' : ''}< ${num(schema['exclusiveMaximum'])}`);
  if (schema['minItems'] !== undefined && schema['minItems'] === schema['maxItems']) bounds.push(`of ${schema['minItems']} items`);
  else if (schema['minItems'] !== undefined) bounds.push(`of at least ${schema['minItems']} item${schema['minItems'] === 1 ? '' : 's'}`);
  if (schema['minLength'] !== undefined) bounds.push('that is not empty');
  if (schema['pattern'] !== undefined) bounds.push(schema['description'] ? `(${schema['description']})` : `matching ${schema['pattern']}`);
  const type = schema['type'] === 'integer' ? 'an integer' : schema['type'] === 'array' ? 'a list' : schema['type'] === 'object' ? 'an object' : `a ${schema['type'] ?? 'value'}`;
  return ['expected', type, ...bounds].join(' ');
}

function kind(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : `${typeof v} ${show(v)}`;
}

function show(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 40 ? text.slice(0, 37) + '...' : text;
}
