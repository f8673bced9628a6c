#!/usr/bin/env node
// node scripts/keras/export_examples.mjs OUT_DIR SPEC...
//
// The modelc half of scripts/keras/check_export.py (which runs it; build dist/
// first): for each spec (or Keras file, imported with its own weights), the
// `.keras` file `modelc export --format keras --seed 0` writes, and <name>.json with a seeded input batch, modelc's
// outputs for it and every layer's (the float64 reference interpreter on the
// unoptimized graph; a layer's output is the value named after it).
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { materialize } from '../../dist/ops/init.js';
import { exportKeras } from '../../dist/export/keras.js';
import { lowerFileAsync } from '../../dist/frontend/load.js';
import { interpretAll } from '../../dist/interp/interpret.js';

/** The input batch: 3 examples, uniform in [-1, 1) from a fixed LCG (the same numbers on every run). */
const BATCH = 3;
function seededInputs(graph) {
  let state = 12345;
  const next = () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return (state / 2 ** 32) * 2 - 1;
  };
  return Object.fromEntries(graph.inputs.map((i) => {
    const shape = [BATCH, ...i.type.shape.slice(1)];
    const data = new Float64Array(shape.reduce((a, d) => a * d, 1)).map(() => Math.fround(next()));
    return [i.name, { shape, data }];
  }));
}

const [out, ...specs] = process.argv.slice(2);
mkdirSync(out, { recursive: true });
for (const path of specs) {
  const loaded = await lowerFileAsync(path);
  const graph = materialize(loaded.graph, 0);
  const bytes = await exportKeras({ ...loaded, graph });
  const name = basename(path);
  writeFileSync(join(out, `${name}.keras`), bytes);
  const feeds = seededInputs(graph);
  const values = interpretAll(graph, feeds);
  const plain = (t) => ({ shape: t.shape, data: Array.from(t.data) });
  const record = {
    spec: path,
    inputs: graph.inputs.map((i) => ({ name: i.name, ...plain(feeds[i.name]) })),
    outputs: graph.outputs.map((o) => ({ name: o, ...plain(values.get(o)) })),
    layers: Object.fromEntries(loaded.layers.map((l) => [l.name, plain(values.get(l.name))])),
  };
  writeFileSync(join(out, `${name}.json`), JSON.stringify(record));
  console.log(`${name}.keras`);
}
