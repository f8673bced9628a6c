/**
 * Comments of a `.nn` file, attached to statements so that `fmt` (parse, then
 * print) keeps them. JSON has no comments; converting to JSON drops them.
 *
 * Statements are keyed by the JSON pointer of their first spec entry
 * (`/inputs/0`, `/layers/3`, `/outputs`, `/training`, `/training/loss`);
 * the `model` line is `''`. A comment goes to the first statement after it
 * (`leading`), or, when it ends the line of a statement, to that statement
 * (`trailing`). A comment inside a multi-line statement moves above it; one
 * after the last statement of a block goes before its `}` (`closing`).
 *
 *   # leading of /layers/0      ->  leading['/layers/0'] = [' leading of /layers/0']
 *   dense(64)  # trailing       ->  trailing['/layers/0'] = ' trailing'
 */
import type { CommentNode } from './ast.js';
import type { Anchor } from './build.js';

export interface DslComments {
  /** Whole-line comments before a statement ('' = before `model`). Texts exclude the `#`. */
  readonly leading: Map<string, string[]>;
  /** The comment at the end of a statement's last line ('' = after the model's `}`). */
  readonly trailing: Map<string, string>;
  /** Comments before the `}` of a block: '' = the model, '/training' = the train block. */
  readonly closing: Map<string, string[]>;
  /** Comments on lines after the model. */
  readonly footer: string[];
  /** Statements preceded by a blank line (blank lines are kept, collapsed to one). */
  readonly blankBefore: Set<string>;
}

export function emptyComments(): DslComments {
  return { leading: new Map(), trailing: new Map(), closing: new Map(), footer: [], blankBefore: new Set() };
}

function push(map: Map<string, string[]>, key: string, text: string): void {
  const list = map.get(key);
  if (list) list.push(text);
  else map.set(key, [text]);
}

/** Attaches `comments` (in source order) to the statements of `model`. */
export function attachComments(text: string, model: Anchor, comments: readonly CommentNode[]): DslComments {
  const out = emptyComments();
  /** Where each statement's leading comments start, for blank-line detection. */
  const leadStart = new Map<string, number>();
  const sameLine = (from: number, to: number) => !text.slice(from, to).includes('\n');

  const attach = (block: Anchor, c: CommentNode): void => {
    const kids = block.children ?? [];
    const inside = kids.find((k) => k.start <= c.start && c.start < k.end);
    if (inside) {
      if (inside.children) return attach(inside, c);
      return lead(inside.key, c);
    }
    const prev = kids.filter((k) => k.end <= c.start).at(-1);
    if (prev && sameLine(prev.end, c.start) && !out.trailing.has(prev.key)) {
      out.trailing.set(prev.key, c.text);
      return;
    }
    const next = kids.find((k) => k.start > c.start);
    if (next) lead(next.key, c);
    else push(out.closing, block.key, c.text);
  };
  const lead = (key: string, c: CommentNode): void => {
    push(out.leading, key, c.text);
    if (!leadStart.has(key)) leadStart.set(key, c.start);
  };

  for (const c of comments) {
    if (c.start < model.start) lead('', c);
    else if (c.start < model.end) attach(model, c);
    else if (sameLine(model.end, c.start) && !out.trailing.has('')) out.trailing.set('', c.text);
    else out.footer.push(c.text);
  }
  markBlankLines(text, model, leadStart, out.blankBefore);
  return out;
}

/** Records statements (after the first of their block) that follow a blank line. */
function markBlankLines(text: string, block: Anchor, leadStart: Map<string, number>, out: Set<string>): void {
  const kids = block.children ?? [];
  kids.forEach((k, i) => {
    if (k.children) markBlankLines(text, k, leadStart, out);
    if (i === 0) return;
    const gap = text.slice(kids[i - 1]!.end, Math.min(k.start, leadStart.get(k.key) ?? k.start));
    if (/\n[ \t\r]*\n/.test(gap)) out.add(k.key);
  });
}
