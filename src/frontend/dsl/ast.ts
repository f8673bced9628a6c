/**
 * The syntax tree that the generated parser (grammar/nn.peggy) returns, and
 * the lexical rules the printer must agree with (identifiers, keywords,
 * quoting). Every node carries `start`/`end` source offsets (half-open).
 */

export interface Range {
  readonly start: number;
  readonly end: number;
}

/** A bare identifier or a backtick-quoted name. As a value it is a string; as a positional argument, an input reference. */
export interface NameNode extends Range {
  readonly kind: 'name';
  readonly name: string;
  readonly quoted: boolean;
}

export type ValueNode =
  | NameNode
  | (Range & { readonly kind: 'number'; readonly value: number })
  | (Range & { readonly kind: 'string'; readonly value: string })
  | (Range & { readonly kind: 'literal'; readonly value: boolean | null })
  | (Range & { readonly kind: 'list'; readonly items: readonly ValueNode[] })
  | (Range & { readonly kind: 'object'; readonly members: readonly MemberNode[] })
  | ValueCallNode;

/** `key: value`: an object member, a keyword argument, a `train` entry. */
export interface MemberNode extends Range {
  readonly key: NameNode;
  readonly value: ValueNode;
}

export type ArgNode =
  | (MemberNode & { readonly kind: 'keyword' })
  | (Range & { readonly kind: 'positional'; readonly value: ValueNode });

/** `random_normal(stddev: 0.1)` in value position. */
export interface ValueCallNode extends Range {
  readonly kind: 'call';
  readonly callee: NameNode;
  readonly args: readonly ArgNode[];
}

/** One layer of a chain: `dense(64)`, `reuse encoder(x2)`. */
export interface CallNode extends Range {
  readonly kind: 'call';
  /** The `reuse` keyword, for `reuse <layer>` calls. */
  readonly reuse: Range | null;
  readonly callee: NameNode;
  readonly args: readonly ArgNode[];
}

export interface InputStatement extends Range {
  readonly kind: 'input';
  readonly keyword: Range;
  readonly name: NameNode;
  readonly shape: ValueNode;
}

export interface LayerStatement extends Range {
  readonly kind: 'layer';
  /** The `name =` target, naming the last call. */
  readonly target: NameNode | null;
  readonly calls: readonly CallNode[];
}

export interface OutputStatement extends Range {
  readonly kind: 'output';
  readonly keyword: Range;
  readonly names: readonly NameNode[];
}

export interface TrainStatement extends Range {
  readonly kind: 'train';
  readonly keyword: Range;
  readonly entries: readonly MemberNode[];
}

export type Statement = InputStatement | LayerStatement | OutputStatement | TrainStatement;

export interface ModelNode extends Range {
  readonly kind: 'model';
  readonly keyword: Range;
  readonly name: NameNode;
  readonly body: readonly Statement[];
}

/** A `#` comment; `text` is what follows the `#`. */
export interface CommentNode extends Range {
  readonly text: string;
}

export interface FileNode {
  readonly models: readonly ModelNode[];
  readonly comments: readonly CommentNode[];
}

// ---- lexical rules shared with the printer (keep in step with the grammar) ----

export const keywords: ReadonlySet<string> = new Set(['model', 'input', 'output', 'train', 'reuse', 'true', 'false', 'null']);

const identifierPattern = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function isIdentifier(s: string): boolean {
  return identifierPattern.test(s);
}

/** Whether `s` can be written bare as a name or string value. */
export function isBare(s: string): boolean {
  return isIdentifier(s) && !keywords.has(s);
}

const shortEscapes: Record<string, string> = { '\\': '\\\\', '`': '\\`', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f' };

/**
 * A name as the DSL writes it: bare, or backtick-quoted with escapes for
 * backslash, backtick, control characters and lone surrogates (so that any
 * string survives a trip through a UTF-8 file).
 */
export function formatName(s: string): string {
  if (isBare(s)) return s;
  const escaped = s.replace(/[\\`\u0000-\u001f\u007f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, (c) =>
    shortEscapes[c] ?? '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'),
  );
  return '`' + escaped + '`';
}
