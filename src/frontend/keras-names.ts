/**
 * Keras's names in a spec, resolved to modelc's canonical ones before the
 * spec is validated: the one place where every front end (DSL, JSON, TF.js
 * and Keras import) meets, so lowering, `fmt` and `convert` only ever see
 * canonical names (`fmt` prints `max_pool2d` for `max_pooling2d`, `mse` for
 * `mean_squared_error`).
 *
 *   layer `type`       the record's type, aliases, Keras names (ops/layer-names.ts)
 *   `activation`       Keras's activation strings (`silu`: the records' `keras` names)
 *   `*_initializer`    initializerAliases, VarianceScaling arguments (ops/init.ts)
 *   training loss      lossAliases (spec/training.ts)
 *   training metrics   metricAliases: a named accuracy must agree with the loss
 *   training optimizer optimizerNamed: any case, as Keras reads it
 *
 * A Keras name that modelc has no counterpart for fails here, located, with
 * what modelc supports; an unknown name gets a did-you-mean. Values that are
 * not names (a number where a loss goes) are left to schema validation. The
 * spec is copied where a name changes, never modified.
 */
import { fail, q, suggest, type DiagnosticCode } from '../diagnostics/diagnostic.js';
import { activationFromKeras } from '../ops/activation.js';
import { initializerAliases, initializerNames, isInitializerAttr, kerasOnlyInitializers, varianceScalingName } from '../ops/init.js';
import { getLayer } from '../ops/registry.js';
import {
  kerasOnlyLosses,
  kerasOnlyMetrics,
  kerasOnlyOptimizers,
  lossAliases,
  lossNames,
  metricAliases,
  metricNames,
  optimizerNamed,
  optimizerNames,
  type LossName,
} from '../spec/training.js';
import type { SpecLocations, SpecPath } from './locations.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const has = (table: object, key: string) => Object.hasOwn(table, key);

/** `raw` with every Keras name replaced by modelc's (copied where one changes); fails on names modelc lacks. */
export function resolveKerasNames(raw: unknown, loc: SpecLocations): unknown {
  if (!isObj(raw)) return raw;
  const out: Obj = { ...raw };
  if (Array.isArray(raw['layers'])) out['layers'] = raw['layers'].map((e, i) => resolveLayer(e, ['layers', i], loc));
  if (isObj(raw['training'])) out['training'] = resolveTraining(raw['training'], ['training'], loc);
  return out;
}

/** A layer entry with its canonical `type`, initializer and activation names. */
function resolveLayer(entry: unknown, path: SpecPath, loc: SpecLocations): unknown {
  if (!isObj(entry) || typeof entry['type'] !== 'string') return entry;
  const def = getLayer(entry['type']);
  if (!def) return entry;
  const out: Obj = { ...entry, type: def.type };
  for (const [key, schema] of Object.entries(def.attrs)) {
    if (has(entry, key) && isInitializerAttr(schema)) out[key] = resolveInitializer(entry[key], [...path, key], loc);
  }
  if (has(def.attrs, 'activation') && typeof entry['activation'] === 'string') out['activation'] = activationName(entry['activation']);
  return out;
}

/**
 * An `activation` attribute's Keras spelling as modelc's name (`silu` is
 * `swish`, `hard_silu` `hard_swish`, TF.js `hardSigmoid`); one that also
 * fixes attributes (`gelu_new`) is left for validation to refuse, as the
 * attribute holds a name only.
 */
function activationName(name: string): string {
  const keras = activationFromKeras(name);
  return keras !== undefined && Object.keys(keras.attrs).length === 0 ? keras.name : name;
}

// ---------------------------------------------------------------------------
// Initializers

function resolveInitializer(v: unknown, path: SpecPath, loc: SpecLocations): unknown {
  if (typeof v === 'string') return initializerName(v, path, loc);
  if (!isObj(v) || typeof v['type'] !== 'string') return v;
  const type = v['type'];
  if (type === 'VarianceScaling' || type === 'variance_scaling') return varianceScaling(v, path, loc);
  // Other initializers take no VarianceScaling arguments: left in place, schema validation refuses them.
  return { ...v, type: initializerName(type, [...path, 'type'], loc) };
}

/** `{type: "VarianceScaling", scale, mode, distribution, seed?}` as the glorot, he or lecun initializer it is. */
function varianceScaling(v: Obj, path: SpecPath, loc: SpecLocations): Obj | string {
  const { type: _, scale, mode, distribution, ...args } = v;
  if (scale !== undefined && typeof scale !== 'number') fail('attributeType', `VarianceScaling scale: expected a number, got ${JSON.stringify(scale)}`, loc.value([...path, 'scale']));
  const name = varianceScalingName(typeof scale === 'number' ? scale : undefined, mode, distribution);
  if (!name) {
    const shown = `scale=${JSON.stringify(scale ?? 1)}, mode=${JSON.stringify(mode ?? 'fan_in')}, distribution=${JSON.stringify(distribution ?? 'truncated_normal')}`;
    fail('attributeType', `VarianceScaling(${shown}) has no modelc initializer (glorot, he and lecun, uniform or truncated normal, have one)`, loc.value(path));
  }
  // Only VarianceScaling's own arguments given: the bare name, as a Keras class name alone resolves.
  return Object.keys(args).length === 0 ? name : { type: name, ...args };
}

function initializerName(name: string, path: SpecPath, loc: SpecLocations): string {
  if ((initializerNames as readonly string[]).includes(name)) return name;
  if (has(initializerAliases, name)) return initializerAliases[name]!;
  const supported = `modelc has ${initializerNames.join(', ')}`;
  if (kerasOnlyInitializers.includes(name)) unsupported('attributeType', `Keras initializer ${q(name)}`, supported, path, loc);
  return unknown('attributeType', 'initializer', name, [...initializerNames, ...Object.keys(initializerAliases)], supported, path, loc);
}

// ---------------------------------------------------------------------------
// The training block

function resolveTraining(training: Obj, path: SpecPath, loc: SpecLocations): Obj {
  const out: Obj = { ...training };
  const loss = typeof training['loss'] === 'string' ? lossName(training['loss'], [...path, 'loss'], loc) : undefined;
  if (loss !== undefined) out['loss'] = loss;
  if (Array.isArray(training['metrics'])) {
    out['metrics'] = training['metrics'].map((m, i) => (typeof m === 'string' ? metricName(m, loss, [...path, 'metrics', i], loc) : m));
  }
  const opt = training['optimizer'];
  if (typeof opt === 'string') out['optimizer'] = optimizerName(opt, [...path, 'optimizer'], loc);
  else if (isObj(opt) && typeof opt['type'] === 'string') {
    out['optimizer'] = { ...opt, type: optimizerName(opt['type'], [...path, 'optimizer', 'type'], loc) };
  }
  return out;
}

const lossList = lossNames.map((n) => (n === 'mse' ? 'mse (mean_squared_error)' : n === 'mae' ? 'mae (mean_absolute_error)' : n)).join(', ');

function lossName(name: string, path: SpecPath, loc: SpecLocations): LossName {
  if ((lossNames as readonly string[]).includes(name)) return name as LossName;
  if (has(lossAliases, name)) return lossAliases[name]!;
  const supported = `modelc computes ${lossList}`;
  if (has(kerasOnlyLosses, name)) {
    const full = kerasOnlyLosses[name]!;
    unsupported('schema', `Keras loss ${q(name)}${full !== name ? ` (${full})` : ''}`, supported, path, loc);
  }
  return unknown('schema', 'loss', name, [...lossNames, ...Object.keys(lossAliases)], supported, path, loc);
}

const metricList = `'accuracy' (Keras's binary, categorical or sparse categorical accuracy, as the loss chooses; also 'acc')`;

function metricName(name: string, loss: LossName | undefined, path: SpecPath, loc: SpecLocations): string {
  if ((metricNames as readonly string[]).includes(name)) return name;
  const supported = `modelc computes ${metricList}`;
  if (has(metricAliases, name)) {
    const needs = metricAliases[name]!.loss;
    if (needs === undefined || loss === undefined || needs === loss) return metricNames[0];
    const message = `metric ${q(name)} is the accuracy of loss ${q(needs)}, but the loss is ${q(loss)}: modelc computes one accuracy, chosen by the loss as Keras chooses 'accuracy'; write 'accuracy'`;
    fail('schema', message, loc.value(path));
  }
  if (kerasOnlyMetrics.includes(name)) unsupported('schema', `Keras metric ${q(name)}`, supported, path, loc);
  return unknown('schema', 'metric', name, [...metricNames, ...Object.keys(metricAliases)], supported, path, loc);
}

function optimizerName(name: string, path: SpecPath, loc: SpecLocations): string {
  const named = optimizerNamed(name);
  if (named) return named;
  const supported = `modelc has ${optimizerNames.join(', ')}, in any case as Keras reads them`;
  if (kerasOnlyOptimizers.includes(name.toLowerCase())) unsupported('schema', `Keras optimizer ${q(name)}`, supported, path, loc);
  return unknown('schema', 'optimizer', name, optimizerNames, supported, path, loc);
}

// ---------------------------------------------------------------------------
// Diagnostics

/** A Keras name modelc has no counterpart for: no did-you-mean (it is not a typo). */
function unsupported(code: DiagnosticCode, what: string, supported: string, path: SpecPath, loc: SpecLocations): never {
  fail(code, `${what} is not supported: ${supported}`, loc.value(path));
}

function unknown(code: DiagnosticCode, kind: string, name: string, candidates: readonly string[], supported: string, path: SpecPath, loc: SpecLocations): never {
  fail(code, `unknown ${kind} ${q(name)}${suggest(name, candidates)} (${supported})`, loc.value(path));
}
