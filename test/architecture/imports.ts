/**
 * The import graph of src/ for the layering test: every import a file makes
 * (static, `export ... from`, type-only, dynamic `import()`, `import('x').T` in
 * types), resolved to files, then checked against a layer table and for
 * cycles. Parsing uses the TypeScript compiler API that ts-morph carries
 * (the `typescript` package itself is the native compiler, with no API).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { ts } from 'ts-morph';

export type ImportKind = 'static' | 'type' | 'dynamic';

export interface ImportRef {
  readonly specifier: string;
  readonly kind: ImportKind;
  readonly line: number;
}

/** An import whose target is computed at run time, so no test can follow it. */
export interface Unresolvable {
  readonly text: string;
  readonly line: number;
}

/** A layer is a folder of src/ (or a top-level file, by its stem); it may import the layers it `uses`, and theirs. */
export interface Layer {
  readonly name: string;
  readonly uses: readonly string[];
}

export interface Edge {
  readonly from: string;
  readonly to: string;
  readonly kind: ImportKind;
  readonly line: number;
}

/** The imports of one source text; computed specifiers are `unresolvable` unless they cannot name a file (`data:` URLs). */
export function importsOf(path: string, text: string): { imports: ImportRef[]; unresolvable: Unresolvable[] } {
  const kind = path.endsWith('.js') ? ts.ScriptKind.JS : ts.ScriptKind.TS;
  const file = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true, kind);
  const imports: ImportRef[] = [];
  const unresolvable: Unresolvable[] = [];
  const lineOf = (node: ts.Node) => file.getLineAndCharacterOfPosition(node.getStart(file)).line + 1;
  const add = (specifier: ts.Node | undefined, k: ImportKind, at: ts.Node) => {
    if (specifier && ts.isStringLiteralLike(specifier)) imports.push({ specifier: specifier.text, kind: k, line: lineOf(at) });
    else if (specifier && !(ts.isTemplateExpression(specifier) && !specifier.head.text.startsWith('.'))) {
      unresolvable.push({ text: specifier.getText(file), line: lineOf(at) });
    }
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) add(node.moduleSpecifier, node.importClause?.isTypeOnly ? 'type' : 'static', node);
    else if (ts.isExportDeclaration(node)) add(node.moduleSpecifier, node.isTypeOnly ? 'type' : 'static', node);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node.moduleReference.expression, node.isTypeOnly ? 'type' : 'static', node);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node.arguments[0], 'dynamic', node);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal, 'type', node);
    ts.forEachChild(node, visit);
  };
  visit(file);
  return { imports, unresolvable };
}

/** Every .ts and .js file under `dir`, as paths relative to `root`, sorted. */
export function sourceFiles(root: string, dir = root): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(root, path));
    else if (/\.(ts|js)$/.test(entry)) out.push(relative(root, path));
  }
  return out.sort();
}

/**
 * The file a relative specifier names (`./x.js` is `x.ts` in source; `.d.ts`
 * declares a generated `.js`); undefined for a package import; `null` when
 * it names no file.
 */
export function resolveImport(root: string, from: string, specifier: string): string | null | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const target = resolve(root, dirname(from), specifier);
  const stem = target.replace(/\.js$/, '');
  for (const candidate of [`${stem}.ts`, `${stem}.d.ts`, target]) {
    if (candidate.startsWith(root) && existsSync(candidate) && statSync(candidate).isFile()) return relative(root, candidate);
  }
  return null;
}

/** The layer of a file: its top folder, or for a top-level file its stem (`index.ts` is `index`). */
export function layerOf(file: string): string {
  const [first, ...rest] = file.split('/');
  return rest.length > 0 ? first! : first!.replace(/\.(d\.)?(ts|js)$/, '');
}

/** Each layer with every layer it may import (its own included): the closure of `uses`. */
export function allowedImports(layers: readonly Layer[]): Map<string, Set<string>> {
  const allowed = new Map<string, Set<string>>();
  for (const layer of layers) {
    const set = new Set([layer.name]);
    for (const used of layer.uses) for (const l of allowed.get(used) ?? [used]) set.add(l);
    allowed.set(layer.name, set);
  }
  return allowed;
}

/** Uses that do not name an earlier layer: the table must read bottom to top. */
export function tableProblems(layers: readonly Layer[]): string[] {
  const seen = new Set<string>();
  const problems: string[] = [];
  for (const layer of layers) {
    for (const used of layer.uses) if (!seen.has(used)) problems.push(`${layer.name} uses ${used}, which is not listed before it`);
    seen.add(layer.name);
  }
  return problems;
}

/** Imports against the order, as `file:line -> target (layer a may not import layer b)`. */
export function layeringViolations(edges: readonly Edge[], layers: readonly Layer[]): string[] {
  const allowed = allowedImports(layers);
  const out: string[] = [];
  for (const e of edges) {
    const from = layerOf(e.from);
    const to = layerOf(e.to);
    const ok = allowed.get(from);
    if (!ok) out.push(`${e.from}: its layer '${from}' is not in the layer table`);
    else if (!ok.has(to)) out.push(`${e.from}:${e.line} -> ${e.to} (${e.kind} import; '${from}' may not import '${to}')`);
  }
  return [...new Set(out)];
}

/**
 * Every import cycle among files, one per strongly connected component, as
 * `a -> b -> ... -> a`; a component with more files than its shortest cycle
 * lists them all, since breaking that one cycle would leave others.
 */
export function importCycles(edges: readonly Edge[]): string[] {
  const next = new Map<string, string[]>();
  for (const e of edges) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  return stronglyConnected(next)
    .filter((c) => c.length > 1 || (next.get(c[0]!) ?? []).includes(c[0]!))
    .map((component) => {
      const cycle = cycleThrough(component, next);
      const all = cycle.length - 1 < component.length ? ` (one of the cycles among ${component.join(', ')})` : '';
      return cycle.join(' -> ') + all;
    });
}

/** Tarjan's algorithm (iterative: src/ has long import chains). */
function stronglyConnected(next: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  for (const start of [...next.keys()].sort()) {
    if (index.has(start)) continue;
    const work: [string, number][] = [[start, 0]];
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const [v, i] = frame;
      if (i === 0) {
        index.set(v, index.size);
        low.set(v, index.get(v)!);
        stack.push(v);
        onStack.add(v);
      }
      const targets = next.get(v) ?? [];
      if (i < targets.length) {
        frame[1]++;
        const w = targets[i]!;
        if (!index.has(w)) work.push([w, 0]);
        else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1]![0];
        low.set(parent, Math.min(low.get(parent)!, low.get(v)!));
      }
      if (low.get(v) === index.get(v)) {
        const component: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          component.push(w);
        } while (w !== v);
        components.push(component.sort());
      }
    }
  }
  return components;
}

/** A shortest cycle from the component's first file back to itself (breadth-first inside the component). */
function cycleThrough(component: readonly string[], next: ReadonlyMap<string, readonly string[]>): string[] {
  const members = new Set(component);
  const start = component[0]!;
  const cameFrom = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of next.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let at = v; at !== start; at = cameFrom.get(at)!) path.unshift(at);
        return [start, ...path];
      }
      if (!cameFrom.has(w)) {
        cameFrom.set(w, v);
        queue.push(w);
      }
    }
  }
  return [...component];
}
