/**
 * The Keras import round trip of the conformance suite. Each layer record
 * with a Keras import rule (`LayerDef.kerasImport`) and examples
 * (`LayerDef.examples`) is written as a one-layer TF.js model.json of its
 * canonical Keras class, whose config is the example's attributes (modelc's
 * attribute names and values are Keras's), and imported; the imported model
 * must lower to exactly the IR that the same example lowers to when written
 * as a modelc spec. The ops of that IR are the ops whose Keras mapping the
 * round trip exercises, so the suite can ask, per op, which round trips
 * reach it.
 */
import { expect } from 'vitest';
import { SourceFile } from '../../src/diagnostics/source.js';
import { lowerLoaded, parseSpecSource } from '../../src/frontend/load.js';
import type { Graph } from '../../src/ir/graph.js';
import { printGraph } from '../../src/ir/print.js';
import { isImportable } from '../../src/ops/keras-def.js';
import type { LayerDef, LayerExample } from '../../src/ops/op-def.js';
import { layers } from '../../src/ops/registry.js';
import { lowerJson } from '../helpers/graphs.js';

export interface KerasRoundTrip {
  /** `Conv2D -> conv2d #1`. */
  readonly name: string;
  /** The ops the example lowers to. */
  readonly ops: ReadonlySet<string>;
  /** Imports the model.json and compares its IR with the spec's. */
  run(): void;
}

const inputName = (k: number) => `in${k}`;

/** The example as a modelc spec: inputs `in0`, `in1`, ..., then the layer `probe`. */
function directGraph(def: LayerDef, ex: LayerExample<Record<string, unknown>>): Graph {
  const names = ex.inputs.map((_, k) => inputName(k));
  const layer = { type: def.type, ...ex.attrs, name: 'probe', ...(names.length > 1 ? { inputs: names } : {}) };
  return lowerJson({ name: 'roundtrip', inputs: ex.inputs.map((shape, k) => ({ name: names[k], shape })), layers: [layer] }).graph;
}

/** The example as a TF.js layers-model topology: one InputLayer per input, then layer `probe` of class `cls`. */
function modelJson(cls: string, ex: LayerExample<Record<string, unknown>>): SourceFile {
  const ins = ex.inputs.map((shape, k) => ({
    class_name: 'InputLayer',
    name: inputName(k),
    config: { name: inputName(k), batch_input_shape: [null, ...shape], dtype: 'float32' },
    inbound_nodes: [],
  }));
  const probe = {
    class_name: cls,
    name: 'probe',
    config: { name: 'probe', trainable: true, dtype: 'float32', ...ex.attrs },
    inbound_nodes: [ins.map((i) => [i.name, 0, 0, {}])],
  };
  const config = { name: 'roundtrip', layers: [...ins, probe], input_layers: ins.map((i) => [i.name, 0, 0]), output_layers: [['probe', 0, 0]] };
  const json = { modelTopology: { class_name: 'Model', config }, format: 'layers-model' };
  return new SourceFile('roundtrip/model.json', JSON.stringify(json, null, 1));
}

/** IR text without the graph's name (the import names the model after its file). */
const irBody = (g: Graph) => printGraph({ ...g, name: 'roundtrip' });

/** One round trip per example of every importable layer record. */
export function kerasRoundTrips(): KerasRoundTrip[] {
  return layers.flatMap((def) => {
    const rule = def.kerasImport;
    if (!isImportable(rule)) return [];
    return (def.examples ?? []).map((example, k) => {
      const ex = example as LayerExample<Record<string, unknown>>;
      const direct = directGraph(def, ex);
      const cls = rule.classes[0]!;
      return {
        name: `${cls} -> ${def.type} #${k + 1}`,
        ops: new Set(direct.nodes.map((n) => n.op)),
        run: () => {
          const imported = lowerLoaded(parseSpecSource(modelJson(cls, ex))).graph;
          expect(irBody(imported), `${cls} -> ${def.type} #${k + 1}: the imported model's IR`).toBe(irBody(direct));
        },
      };
    });
  });
}
