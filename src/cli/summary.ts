/**
 * `modelc check`: a summary table in the manner of Keras `model.summary()`.
 *
 *   Model: "seed_mlp"
 *   ┌──────────────────────────────┬──────────────┬─────────┐
 *   │ Layer (type)                 │ Output Shape │ Param # │
 *   ...
 *   Total params: 5,898 (trainable: 5,638, non-trainable: 260)
 *
 * A "Connected to" column appears when the model is not a plain chain.
 */
import type { Graph } from '../ir/graph.js';
import type { TensorType } from '../ir/types.js';
import type { LayerInfo } from '../frontend/lower.js';
import type { ModelSpec } from '../frontend/spec.js';

const fmt = (n: number) => n.toLocaleString('en-US');

function outputShape(t: TensorType): string {
  return `(${t.shape.map((d) => (d === 'N' ? 'None' : d)).join(', ')})`;
}

export function summarize(spec: ModelSpec, graph: Graph, layers: readonly LayerInfo[]): string {
  const functional = spec.inputs.length > 1 || spec.layers.some((l) => l.inputs !== undefined);
  const connections = new Map<string, string>();
  const params = new Set(graph.params.map((p) => p.name));
  for (const n of graph.nodes) {
    if (connections.has(n.layer)) continue;
    connections.set(n.layer, n.operands.filter((o) => !params.has(o)).join(', '));
  }
  const header = ['Layer (type)', 'Output Shape', 'Param #', ...(functional ? ['Connected to'] : [])];
  const rows: string[][] = [
    ...graph.inputs.map((i) => [`${i.name} (InputLayer)`, outputShape(i.type), '0', ...(functional ? [''] : [])]),
    ...layers.map((l) => [
      `${l.name} (${l.reuses ? `${l.keras}, reuses ${l.reuses}` : l.keras})`,
      outputShape(l.output),
      fmt(l.params),
      ...(functional ? [connections.get(l.name) ?? ''] : []),
    ]),
  ];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (l: string, m: string, r: string) => l + widths.map((w) => '─'.repeat(w + 2)).join(m) + r;
  const row = (cells: string[]) =>
    '│' + cells.map((cell, c) => ' ' + (c === 2 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)) + ' ').join('│') + '│';
  const total = layers.reduce((n, l) => n + l.params, 0);
  const trainable = layers.reduce((n, l) => n + l.trainableParams, 0);
  return [
    `Model: "${graph.name}"`,
    line('┌', '┬', '┐'),
    row(header),
    line('├', '┼', '┤'),
    ...rows.map(row),
    line('└', '┴', '┘'),
    `Total params: ${fmt(total)} (trainable: ${fmt(trainable)}, non-trainable: ${fmt(total - trainable)})`,
  ].join('\n');
}
