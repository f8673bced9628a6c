/**
 * The Keras/TF.js import rules that the layer records hold
 * (`LayerDef.kerasImport`), each checked from the record's own examples: a
 * functional model.json with one layer of each class the record claims,
 * whose config is the example's attributes (Keras attribute names and values
 * are modelc's, so the config is the attributes as they are), must import as
 * exactly that spec layer and compile. A layer added to the registry is
 * tested here without a new test, and fails here if it says nothing about
 * Keras or has no examples to import.
 */
import { describe, expect, it } from 'vitest';
import { ModelcError } from '../../src/diagnostics/diagnostic.js';
import { SourceFile } from '../../src/diagnostics/source.js';
import { lowerLoaded, parseSpecSource } from '../../src/frontend/load.js';
import { importableClasses, importTfjs } from '../../src/frontend/tfjs.js';
import { isImportable, type KerasImport } from '../../src/ops/keras-def.js';
import type { LayerDef, LayerExample } from '../../src/ops/op-def.js';
import { layers } from '../../src/ops/registry.js';

const importing = layers.flatMap((def) => (isImportable(def.kerasImport) ? [{ def, rule: def.kerasImport }] : []));

/** A functional model: one InputLayer per input, then layer `probe` of class `cls` applied to all of them. */
function modelJson(cls: string, config: Record<string, unknown>, inputs: readonly (readonly number[])[]): SourceFile {
  const ins = inputs.map((shape, k) => ({
    class_name: 'InputLayer',
    name: `in${k}`,
    config: { name: `in${k}`, batch_input_shape: [null, ...shape], dtype: 'float32' },
    inbound_nodes: [],
  }));
  const probe = {
    class_name: cls,
    name: 'probe',
    config: { name: 'probe', trainable: true, dtype: 'float32', ...config },
    inbound_nodes: [ins.map((i) => [i.name, 0, 0, {}])],
  };
  const topology = {
    class_name: 'Model',
    config: { name: 'roundtrip', layers: [...ins, probe], input_layers: ins.map((i) => [i.name, 0, 0]), output_layers: [['probe', 0, 0]] },
  };
  return new SourceFile('roundtrip/model.json', JSON.stringify({ modelTopology: topology, format: 'layers-model' }, null, 1));
}

function importError(file: SourceFile): string {
  try {
    importTfjs(file);
  } catch (err) {
    if (err instanceof ModelcError) return err.diagnostics.map((d) => `${d.code}: ${d.message}`).join('\n');
    throw err;
  }
  throw new Error('the import succeeded');
}

const cases = importing.flatMap(({ def, rule }) =>
  rule.classes.flatMap((cls) => (def.examples ?? []).map((example, k) => ({ name: `${cls} -> ${def.type} #${k + 1}`, def, cls, example }))),
);

describe('Keras import facts in the layer records', () => {
  it('every layer says which Keras classes import as it, or why none does', () => {
    for (const def of layers) {
      const rule = def.kerasImport;
      expect(rule, def.type).toBeDefined();
      if (isImportable(rule)) {
        expect(rule.classes.length, def.type).toBeGreaterThan(0);
        expect(def.examples?.length ?? 0, `${def.type} has no examples to import`).toBeGreaterThan(0);
      } else {
        expect(rule!.notImportable.length, def.type).toBeGreaterThan(10);
      }
    }
  });

  it('each Keras class belongs to one layer', () => {
    const owners = new Map<string, string>();
    for (const { def, rule } of importing) {
      for (const cls of rule.classes) {
        expect(owners.get(cls), `${cls} is claimed by ${owners.get(cls)} and ${def.type}`).toBeUndefined();
        owners.set(cls, def.type);
      }
    }
  });

  it('the importable classes are the records\' canonical classes, and an unknown class lists them', () => {
    expect(importableClasses).toEqual(['InputLayer', ...importing.map(({ rule }) => rule.classes[0])]);
    const message = importError(modelJson('LSTM', { units: 4 }, [[3, 2]]));
    expect(message).toBe(`unknownLayer: layer 'probe' (LSTM): layer class 'LSTM' is not supported (modelc imports ${importableClasses.slice(1).join(', ')})`);
  });

  it('has cases for every importable record', () => {
    expect(new Set(cases.map((c) => c.def.type))).toEqual(new Set(importing.map(({ def }) => def.type)));
  });

  it.each(cases)('$name imports as the example and compiles', ({ def, cls, example }) => {
    expectNoDefaults(def, example);
    const file = modelJson(cls, example.attrs, example.inputs);
    const { spec } = importTfjs(file);
    const inputNames = example.inputs.map((_, k) => `in${k}`);
    expect(spec.inputs).toEqual(example.inputs.map((shape, k) => ({ name: inputNames[k], shape })));
    expect(spec.layers).toEqual([{ type: def.type, ...example.attrs, name: 'probe', ...(example.inputs.length > 1 ? { inputs: inputNames } : {}) }]);
    const { graph } = lowerLoaded(parseSpecSource(file));
    expect(graph.outputs.length).toBe(1);
  });

  it.each(importing.flatMap(({ rule }) => rule.classes.map((cls) => ({ cls, rule }))))(
    '$cls: diagnostics name the canonical class and refuse an unread option',
    ({ cls, rule }: { cls: string; rule: KerasImport }) => {
      const def = importing.find((i) => i.rule === rule)!.def;
      const example = def.examples![0]!;
      const message = importError(modelJson(cls, { ...example.attrs, bogus_option: 1 }, example.inputs));
      expect(message).toBe(`import: layer 'probe' (${rule.classes[0]}): option 'bogus_option' = 1 is not supported`);
    },
  );
});

/** An example attribute equal to its default would be dropped by the import; the comparison above needs none. */
function expectNoDefaults(def: LayerDef, example: LayerExample<Record<string, unknown>>): void {
  for (const [k, v] of Object.entries(example.attrs)) {
    const schema = def.attrs[k];
    expect(schema, `${def.type} has no attribute ${k}`).toBeDefined();
    expect(JSON.stringify(v), `${def.type}.${k} is its default`).not.toBe(JSON.stringify(schema!.default));
  }
}
