/**
 * The canonical key order of a spec, shared by the JSON and DSL printers so
 * that conversion round-trips exactly: top-level keys in contract order, layer
 * keys as `type` (or `reuse`), `name`, `inputs`, then attributes in the order
 * their layer declares them (unknown keys last, as given). `type` leads every
 * `{type, ...}` object (initializers, optimizers).
 */
import { getLayer } from '../ops/registry.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const topOrder = ['$schema', 'name', 'inputs', 'layers', 'outputs', 'training'];
const trainingOrder = ['loss', 'optimizer', 'metrics', 'batch_size', 'epochs'];

function ordered(obj: { [key: string]: Json }, order: readonly string[]): { [key: string]: Json } {
  const out: { [key: string]: Json } = {};
  // defineProperty: a "__proto__" key is kept as a plain key, as JSON.parse keeps it.
  const put = (k: string) => Object.defineProperty(out, k, { value: obj[k], enumerable: true, writable: true, configurable: true });
  for (const k of order) if (Object.hasOwn(obj, k)) put(k);
  for (const k of Object.keys(obj)) if (!Object.hasOwn(out, k)) put(k);
  return out;
}

function isObject(v: unknown): v is { [key: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `{type, ...}` objects nested in attributes put `type` first. */
function typeFirst(v: Json): Json {
  if (Array.isArray(v)) return v.map(typeFirst);
  if (!isObject(v)) return v;
  const o = ordered(v, ['type']);
  for (const k of Object.keys(o)) o[k] = typeFirst(o[k]!);
  return o;
}

function canonicalLayer(entry: Json): Json {
  if (!isObject(entry)) return entry;
  const def = typeof entry['type'] === 'string' ? getLayer(entry['type']) : undefined;
  const order = ['type', 'reuse', 'name', 'inputs', ...Object.keys(def?.attrs ?? {})];
  return typeFirst(ordered(entry, order));
}

/** A copy of `spec` with every object's keys in canonical order. Values are untouched. */
export function canonicalize<T>(spec: T): T {
  if (!isObject(spec)) return spec;
  const top = ordered(spec, topOrder);
  if (Array.isArray(top['layers'])) top['layers'] = top['layers'].map(canonicalLayer);
  if (Array.isArray(top['inputs'])) top['inputs'] = top['inputs'].map((i) => (isObject(i) ? ordered(i, ['name', 'shape']) : i));
  if (isObject(top['training'])) top['training'] = typeFirst(ordered(top['training'], trainingOrder));
  return top as T;
}
