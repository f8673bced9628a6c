/**
 * The textual IR, the main debugging surface and the form of golden tests.
 * `parse(print(g))` rebuilds `g` exactly (see parse.ts).
 *
 *   graph seed_mlp(%x: f32[N,16]) {
 *     param %dense/kernel: f32[16,64] = uniform
 *     param %batch_normalization/moving_mean: f32[64] = zeros {trainable=false}
 *     %dense: f32[N,64] = dense(%x, %dense/kernel, %dense/bias)
 *     %conv2d/linear: f32[N,26,26,32] = conv2d(%x, %conv2d/kernel) {strides=[1,1], ...} @conv2d
 *     return %softmax
 *   }
 *
 * Names made of [A-Za-z0-9_./-] that start with a letter or `_` print bare; any other name prints as a JSON
 * string (`%"my layer"`). `@layer` (the spec layer a node implements) is
 * printed only when it differs from the node's result name.
 */
import type { Graph, InitSpec, Node, ParamDecl } from './graph.js';
import { formatType, type AttrValue, type Attrs } from './types.js';

/** Names that print without quotes: they cannot be mistaken for numbers. */
const bare = /^[A-Za-z_][A-Za-z0-9_.\/-]*$/;

export function formatName(name: string): string {
  return bare.test(name) ? name : JSON.stringify(name);
}

export function formatValueRef(name: string): string {
  return '%' + formatName(name);
}

export function formatAttrValue(v: AttrValue): string {
  if (v === null || typeof v === 'boolean') return String(v);
  if (typeof v === 'number') return formatNumber(v);
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(formatAttrValue).join(',')}]`;
  return formatAttrs(v as Attrs);
}

function formatNumber(n: number): string {
  if (!Number.isFinite(n)) throw new Error(`IR attributes must be finite numbers, got ${n}`);
  return Object.is(n, -0) ? '-0' : String(n);
}

export function formatAttrs(attrs: Attrs): string {
  return `{${Object.entries(attrs).map(([k, v]) => `${formatName(k)}=${formatAttrValue(v)}`).join(', ')}}`;
}

function formatInit(init: InitSpec): string {
  const args = Object.entries(init.args);
  const name = formatName(init.type);
  return args.length === 0 ? name : `${name}(${args.map(([k, v]) => `${formatName(k)}=${formatNumber(v)}`).join(', ')})`;
}

export function printParam(p: ParamDecl): string {
  const flags = p.trainable ? '' : ' {trainable=false}';
  return `param ${formatValueRef(p.name)}: ${formatType(p.type)} = ${formatInit(p.init)}${flags}`;
}

export function printNode(n: Node): string {
  const attrs = Object.keys(n.attrs).length > 0 ? ' ' + formatAttrs(n.attrs) : '';
  const layer = n.layer === n.result ? '' : ` @${formatName(n.layer)}`;
  return `${formatValueRef(n.result)}: ${formatType(n.type)} = ${n.op}(${n.operands.map(formatValueRef).join(', ')})${attrs}${layer}`;
}

export function printGraph(g: Graph): string {
  const inputs = g.inputs.map((i) => `${formatValueRef(i.name)}: ${formatType(i.type)}`).join(', ');
  const lines = [
    `graph ${formatName(g.name)}(${inputs}) {`,
    ...g.params.map((p) => '  ' + printParam(p)),
    ...g.nodes.map((n) => '  ' + printNode(n)),
    `  return ${g.outputs.map(formatValueRef).join(', ')}`,
    '}',
  ];
  return lines.join('\n') + '\n';
}
