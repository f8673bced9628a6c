/**
 * Parser of the textual IR printed by print.ts. Hand-written (the IR syntax is
 * small and fixed); errors are located diagnostics (`irSyntax`). Parsing only
 * rebuilds the graph; `verifyGraph` checks that it makes sense.
 */
import { fail } from '../diagnostics/diagnostic.js';
import { span, SourceFile } from '../diagnostics/source.js';
import type { Graph, InitSpec, InputDecl, Node, ParamDecl } from './graph.js';
import { tensor, type AttrValue, type Attrs, type Dim, type TensorType } from './types.js';

type TokenKind = 'name' | 'ref' | 'number' | 'string' | 'punct' | 'eof';
interface Token {
  kind: TokenKind;
  text: string;
  /** The decoded value of names, refs and strings. */
  value: string;
  start: number;
  end: number;
}

const tokenPattern =
  /\s+|#[^\n]*|(-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?![A-Za-z0-9_.\/-])|(%?)(?:([A-Za-z0-9_.\/-]+)|("(?:[^"\\\n]|\\.)*"))|([(){}\[\]:,=@])/y;

function tokenize(file: SourceFile): Token[] {
  const tokens: Token[] = [];
  const text = file.text;
  let pos = 0;
  while (pos < text.length) {
    tokenPattern.lastIndex = pos;
    const m = tokenPattern.exec(text);
    if (!m || m[0].length === 0) fail('irSyntax', `unexpected character ${JSON.stringify(text[pos])}`, span(file, pos, pos + 1));
    const start = pos;
    pos += m[0].length;
    const [whole, num, percent, bareName, quoted, punct] = m;
    const push = (kind: TokenKind, value: string) => tokens.push({ kind, text: whole, value, start, end: pos });
    if (num !== undefined) push('number', num);
    else if (punct !== undefined) push('punct', punct);
    else if (quoted !== undefined) {
      let value = '';
      try {
        value = JSON.parse(quoted) as string;
      } catch {
        fail('irSyntax', 'invalid string escape', span(file, start, pos));
      }
      push(percent ? 'ref' : 'string', value);
    } else if (bareName !== undefined) push(percent ? 'ref' : 'name', bareName);
  }
  tokens.push({ kind: 'eof', text: 'end of input', value: '', start: text.length, end: text.length });
  return tokens;
}

class IrParser {
  private pos = 0;
  private readonly tokens: Token[];

  constructor(private readonly file: SourceFile) {
    this.tokens = tokenize(file);
  }

  private peek(): Token {
    return this.tokens[this.pos]!;
  }

  private next(): Token {
    return this.tokens[this.pos++]!;
  }

  private error(message: string, t = this.peek()): never {
    return fail('irSyntax', `${message}, found ${t.kind === 'eof' ? 'end of input' : `'${t.text}'`}`, span(this.file, t.start, t.end));
  }

  private isPunct(p: string): boolean {
    const t = this.peek();
    return t.kind === 'punct' && t.text === p;
  }

  private expect(p: string): Token {
    if (!this.isPunct(p)) this.error(`expected '${p}'`);
    return this.next();
  }

  private expectKind(kind: TokenKind, what: string): Token {
    if (this.peek().kind !== kind) this.error(`expected ${what}`);
    return this.next();
  }

  private keyword(word: string): boolean {
    const t = this.peek();
    return t.kind === 'name' && t.text === word;
  }

  private list<T>(close: string, item: () => T): T[] {
    const out: T[] = [];
    if (this.isPunct(close)) {
      this.next();
      return out;
    }
    for (;;) {
      out.push(item());
      if (this.isPunct(',')) this.next();
      else break;
    }
    this.expect(close);
    return out;
  }

  private type(): TensorType {
    const t = this.expectKind('name', "a type like 'f32[N,16]'");
    if (t.value !== 'f32') this.error("expected the dtype 'f32'", t);
    this.expect('[');
    const shape = this.list<Dim>(']', () => {
      const d = this.next();
      if (d.kind === 'name' && d.value === 'N') return 'N';
      if (d.kind === 'number' && /^\d+$/.test(d.text)) return Number(d.text);
      return this.error("expected a dimension (a size or 'N')", d);
    });
    return tensor(shape);
  }

  private name(): string {
    const t = this.next();
    if (t.kind === 'name' || t.kind === 'string') return t.value;
    return this.error('expected a name', t);
  }

  private ref(): string {
    return this.expectKind('ref', "a value like '%x'").value;
  }

  private attrValue(): AttrValue {
    const t = this.peek();
    if (t.kind === 'number') return Number(this.next().text);
    if (t.kind === 'string') return this.next().value;
    if (t.kind === 'name' && ['true', 'false', 'null'].includes(t.text)) {
      this.next();
      return t.text === 'null' ? null : t.text === 'true';
    }
    if (this.isPunct('[')) {
      this.next();
      return this.list(']', () => this.attrValue());
    }
    if (this.isPunct('{')) return this.attrs();
    return this.error('expected an attribute value');
  }

  private attrs(): Attrs {
    this.expect('{');
    const out: Record<string, AttrValue> = {};
    for (const [k, v] of this.list('}', () => {
      const key = this.name();
      this.expect('=');
      return [key, this.attrValue()] as const;
    })) {
      Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
    }
    return out;
  }

  private init(): InitSpec {
    const type = this.name();
    const args: Record<string, number> = {};
    if (this.isPunct('(')) {
      this.next();
      for (const [k, v] of this.list(')', () => {
        const key = this.name();
        this.expect('=');
        return [key, Number(this.expectKind('number', 'a number').text)] as const;
      })) {
        args[k] = v;
      }
    }
    return { type, args };
  }

  private param(): ParamDecl {
    this.next(); // 'param'
    const name = this.ref();
    this.expect(':');
    const type = this.type();
    this.expect('=');
    const init = this.init();
    let trainable = true;
    if (this.isPunct('{')) {
      const flags = this.attrs();
      if (Object.keys(flags).some((k) => k !== 'trainable') || typeof flags['trainable'] !== 'boolean') {
        this.error('a parameter takes only {trainable=false}', this.tokens[this.pos - 1]);
      }
      trainable = flags['trainable'] as boolean;
    }
    return { name, type, trainable, init };
  }

  private node(): Node {
    const result = this.ref();
    this.expect(':');
    const type = this.type();
    this.expect('=');
    const op = this.expectKind('name', 'an op name').value;
    this.expect('(');
    const operands = this.list(')', () => this.ref());
    const attrs = this.isPunct('{') ? this.attrs() : {};
    let layer = result;
    if (this.isPunct('@')) {
      this.next();
      layer = this.name();
    }
    return { op, result, type, operands, attrs, layer };
  }

  graph(): Graph {
    if (!this.keyword('graph')) this.error("expected 'graph'");
    this.next();
    const name = this.name();
    this.expect('(');
    const inputs = this.list<InputDecl>(')', () => {
      const n = this.ref();
      this.expect(':');
      return { name: n, type: this.type() };
    });
    this.expect('{');
    const params: ParamDecl[] = [];
    const nodes: Node[] = [];
    while (this.keyword('param')) params.push(this.param());
    while (this.peek().kind === 'ref') nodes.push(this.node());
    if (!this.keyword('return')) this.error("expected a node, 'param' or 'return'");
    this.next();
    const outputs = [this.ref()];
    while (this.isPunct(',')) {
      this.next();
      outputs.push(this.ref());
    }
    this.expect('}');
    this.expectKind('eof', 'the end of input');
    return { name, inputs, params, nodes, outputs };
  }
}

/** Parses textual IR; `path` names the source in diagnostics. */
export function parseGraph(text: string, path = '<ir>'): Graph {
  return new IrParser(new SourceFile(path, text)).graph();
}
