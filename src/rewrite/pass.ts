/**
 * Passes and the pass manager.
 *
 * A pass is a small named unit `{ id, summary, run }`: graph in, new graph and
 * whether it changed out. `rulePass` turns rewrite rules into a pass that
 * applies them to a fixpoint. The pass manager runs a pipeline by pass ids,
 * verifies the IR after every pass (a pass that breaks an invariant is named
 * in the error), and can print the IR between passes (`--print-after-all`).
 * Built-in passes use this same API; users register their own.
 */
import { fail, ModelcError, q, suggest } from '../diagnostics/diagnostic.js';
import type { Graph } from '../ir/graph.js';
import { checkGraph } from '../ops/verify.js';
import { GraphEditor } from './editor.js';
import { ExplainLog } from './explain.js';
import { matchAt, type Rule } from './pattern.js';

export interface PassContext {
  readonly explain: ExplainLog;
}

export interface PassResult {
  readonly graph: Graph;
  readonly changed: boolean;
}

export interface Pass {
  /** The pass id: also its file name in src/passes/ and its name in `--passes`. */
  readonly id: string;
  readonly summary: string;
  run(graph: Graph, ctx: PassContext): PassResult;
}

/** A pass from a function over a GraphEditor that returns whether it changed anything. */
export function editorPass(id: string, summary: string, edit: (ed: GraphEditor, ctx: PassContext) => boolean): Pass {
  return {
    id,
    summary,
    run(graph, ctx) {
      const ed = new GraphEditor(graph);
      const changed = edit(ed, ctx);
      return { graph: changed ? ed.finish() : graph, changed };
    },
  };
}

/**
 * A pass that applies rules to a fixpoint: each round walks the nodes in
 * order and applies the first rule that matches and whose guards hold.
 */
export function rulePass(id: string, summary: string, rules: readonly Rule[]): Pass {
  return editorPass(id, summary, (ed, { explain }) => {
    let changed = false;
    for (let round = 0; round < 1000; round++) {
      if (!applyOnce(ed, rules, explain)) return changed;
      changed = true;
    }
    return fail('pass', `pass ${q(id)} did not reach a fixpoint in 1000 rounds`);
  });
}

function applyOnce(ed: GraphEditor, rules: readonly Rule[], explain: ExplainLog): boolean {
  for (const node of ed.nodes) {
    for (const rule of rules) {
      const m = matchAt(ed, rule.pattern, node);
      if (!m || (rule.when && !rule.when(m, ed))) continue;
      const reason = (rule.guards ?? []).map((g) => g.check(m, ed)).find((r) => r !== undefined);
      const subject = m[rule.subject ?? ''] ?? node;
      if (reason !== undefined) {
        explain.skipped(rule.name, rule.refusal ? rule.refusal(m, reason) : `${subject.result} not rewritten by ${rule.name}: ${reason}`);
        continue;
      }
      const outcome = rule.rewrite(m, ed, explain);
      if (outcome === undefined) continue;
      if (typeof outcome === 'string' || 'applied' in outcome) {
        if (typeof outcome === 'string') explain.applied(rule.name, outcome);
        else explain.applied(rule.name, outcome.applied, outcome.values);
        return true;
      }
      explain.skipped(rule.name, outcome.skipped);
    }
  }
  return false;
}

export interface RunOptions {
  /** Verify the IR after every pass (default true). */
  readonly verify?: boolean;
  /** Called after each pass with its result (for --print-after / --print-after-all). */
  readonly after?: (pass: Pass, graph: Graph, changed: boolean) => void;
  readonly explain?: ExplainLog;
}

export class PassManager {
  private readonly passes = new Map<string, Pass>();

  constructor(passes: readonly Pass[] = []) {
    for (const p of passes) this.register(p);
  }

  register(pass: Pass): this {
    if (!/^[a-z][a-z0-9-]*$/.test(pass.id)) fail('pass', `invalid pass id ${q(pass.id)}: use lowercase words joined by '-'`);
    if (this.passes.has(pass.id)) fail('pass', `a pass named ${q(pass.id)} is already registered`);
    this.passes.set(pass.id, pass);
    return this;
  }

  ids(): string[] {
    return [...this.passes.keys()];
  }

  get(id: string): Pass {
    const pass = this.passes.get(id);
    if (!pass) fail('pass', `unknown pass ${q(id)}${suggest(id, this.passes.keys())} (known: ${this.ids().join(', ')})`);
    return pass;
  }

  /** Runs the named passes in order; unknown names fail before anything runs. */
  run(graph: Graph, ids: readonly string[], options: RunOptions = {}): Graph {
    const pipeline = ids.map((id) => this.get(id));
    const explain = options.explain ?? new ExplainLog();
    let g = graph;
    for (const pass of pipeline) {
      explain.enter(pass.id);
      const result = pass.run(g, { explain });
      if (options.verify ?? true) {
        const problems = checkGraph(result.graph);
        if (problems.length > 0) {
          throw new ModelcError(
            problems.map((d) => ({ ...d, code: 'pass' as const, message: `pass ${q(pass.id)} produced invalid IR: ${d.message}` })),
          );
        }
      }
      options.after?.(pass, result.graph, result.changed);
      g = result.graph;
    }
    return g;
  }
}
