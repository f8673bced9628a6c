/**
 * Patterns over the IR and rewrite rules made of them.
 *
 * A pattern names op kinds from the root (the last node) backwards through
 * operands, binding nodes to names:
 *
 *   const p = op('relu', { as: 'act', x: op(withTrait('linear-in-weights'), { as: 'linear' }) });
 *   matchAt(ed, p, node)   // { act: Node, linear: Node } or undefined
 *
 * A pattern node names one op kind, or asks the op records through a named
 * test (`withTrait`, `where`), so that rules keep no lists of op names.
 *
 * A rule is a pattern, named guards (each says why it refuses, for
 * `--explain`), and a rewrite. Its algebra goes in its name or doc comment.
 */
import type { Node } from '../ir/graph.js';
import type { GraphEditor } from './editor.js';
import type { ExplainLog } from './explain.js';
import type { OpDef, Trait } from '../ops/op-def.js';
import { getOp } from '../ops/registry.js';
import type { OpName } from './ops.js';

/** A named condition on a node's op, answered from the op records. */
export interface NodeTest {
  /** How the condition reads (`trait linear-in-weights`). */
  readonly name: string;
  matches(node: Node): boolean;
}

export interface Pattern {
  /** Op kinds this pattern matches, or a test on the node's op. */
  readonly ops: readonly OpName[] | NodeTest;
  /** The name the matched node is bound to. */
  readonly as?: string;
  /** Patterns for the producers of operands, by operand index. */
  readonly operands?: readonly (Pattern | undefined)[];
}

/** A pattern for a node of op `ops` (or one passing the test); `x` constrains the producer of its first operand. */
export function op(ops: OpName | readonly OpName[] | NodeTest, options: { as?: string; x?: Pattern; operands?: (Pattern | undefined)[] } = {}): Pattern {
  const operands = options.operands ?? (options.x ? [options.x] : undefined);
  return {
    ops: typeof ops === 'string' ? [ops] : ops,
    ...(options.as !== undefined ? { as: options.as } : {}),
    ...(operands ? { operands } : {}),
  };
}

/** Nodes whose op has `trait`. */
export function withTrait(trait: Trait): NodeTest {
  return { name: `trait ${trait}`, matches: (n) => getOp(n.op)?.traits.includes(trait) ?? false };
}

/** Nodes whose op record satisfies `test` (`where('accepts an epilogue', (d) => d.epilogue !== undefined)`). */
export function where(name: string, test: (def: OpDef, node: Node) => boolean): NodeTest {
  return {
    name,
    matches: (n) => {
      const def = getOp(n.op);
      return def !== undefined && test(def, n);
    },
  };
}

export type Match = Readonly<Record<string, Node>>;

/** Matches `pattern` rooted at `node`; returns the bound nodes. */
export function matchAt(ed: GraphEditor, pattern: Pattern, node: Node): Match | undefined {
  const bound: Record<string, Node> = {};
  const visit = (p: Pattern, n: Node): boolean => {
    if (!('matches' in p.ops ? p.ops.matches(n) : p.ops.includes(n.op as OpName))) return false;
    if (p.as !== undefined) bound[p.as] = n;
    return (p.operands ?? []).every((sub, i) => {
      if (!sub) return true;
      const operand = n.operands[i];
      const producer = operand === undefined ? undefined : ed.producer(operand);
      return producer !== undefined && visit(sub, producer);
    });
  };
  return visit(pattern, node) ? bound : undefined;
}

/** A named condition on a match: returns the reason it does not hold, or undefined. */
export interface Guard {
  readonly name: string;
  check(m: Match, ed: GraphEditor): string | undefined;
}

/**
 * What a rewrite did: a message (applied), the same with the values involved
 * (for tools that check the rewritten region), a refusal, or nothing to do.
 */
export type RewriteOutcome =
  | string
  | { readonly applied: string; readonly values: Readonly<Record<string, string>> }
  | { readonly skipped: string }
  | undefined;

export interface Rule {
  /** Also its algebra, e.g. `batchnorm(dense(x, w, b)) -> dense(x, w*s, (b-mean)*s+beta)`. */
  readonly name: string;
  readonly pattern: Pattern;
  /**
   * A condition across the matched nodes that is part of what the rule
   * matches (a match it rejects is not a refusal and is not explained), e.g.
   * "the producer's op fuses this activation".
   */
  readonly when?: (m: Match, ed: GraphEditor) => boolean;
  readonly guards?: readonly Guard[];
  /** Which bound node the explain log names as the subject (default: the root). */
  readonly subject?: string;
  /** How the explain log words a refusal, e.g. `bn_3 not folded into conv2d_2: <reason>`. */
  readonly refusal?: (m: Match, reason: string) => string;
  /**
   * Rewrites the match. Returns a message for the explain log, a refusal
   * (`{ skipped: reason }`) when it finds a reason not to after all, or
   * undefined when the match turns out not to apply (nothing to explain).
   */
  rewrite(m: Match, ed: GraphEditor, log: ExplainLog): RewriteOutcome;
}

/** The bound node's result has one consumer (one using node, and is not a graph output). */
export function hasSingleUser(binding: string): Guard {
  return {
    name: `hasSingleUser(${binding})`,
    check: (m, ed) => {
      const n = m[binding]!;
      const count = ed.consumers(n.result);
      return count === 1 ? undefined : `${n.result} has ${count} consumers${ed.isOutput(n.result) ? ' (it is a graph output)' : ''}`;
    },
  };
}

/** The bound node's parameters are used by no other node (no shared layer weights). */
export function ownsItsWeights(binding: string): Guard {
  return {
    name: `ownsItsWeights(${binding})`,
    check: (m, ed) => {
      const n = m[binding]!;
      for (const o of n.operands) {
        if (!ed.param(o)) continue;
        const others = ed.users(o).filter((u) => u !== n);
        if (others.length > 0) return `${n.result}'s weights are shared with ${others.map((u) => u.result).join(', ')}`;
      }
      return undefined;
    },
  };
}

/** Every parameter operand of the bound nodes has a value. */
export function hasWeightValues(...bindings: string[]): Guard {
  return {
    name: `hasWeightValues(${bindings.join(', ')})`,
    check: (m, ed) => {
      for (const b of bindings) {
        const missing = m[b]!.operands.find((o) => ed.param(o) && !ed.param(o)!.value);
        if (missing) return `parameter ${missing} has no value (load weights or initialize with a seed)`;
      }
      return undefined;
    },
  };
}
