/**
 * The `.nn` front end: parsing to the JSON contract with locations, located
 * syntax errors, the canonical printer, comments through `fmt`, and the round
 * trips JSON -> DSL -> JSON and DSL -> DSL as properties over random specs.
 */
import fc from 'fast-check';
import { describe, expect, it, test } from 'vitest';
import { ModelcError } from '../../src/diagnostics/diagnostic.js';
import { SourceFile } from '../../src/diagnostics/source.js';
import { parseDsl } from '../../src/frontend/dsl/parse.js';
import { printDsl } from '../../src/frontend/dsl/print.js';
import { canonicalize } from '../../src/frontend/canonical.js';
import type { ModelSpec } from '../../src/frontend/spec.js';
import { getLayer, layerTypes } from '../../src/ops/registry.js';

const file = (text: string) => new SourceFile('test.nn', text);
const parse = (text: string) => parseDsl(file(text));
const specOf = (text: string) => parse(text).spec as ModelSpec;

/** `modelc fmt`: parse, then print with the comments. */
function fmt(text: string): string {
  const { spec, comments } = parse(text);
  return printDsl(spec as ModelSpec, comments);
}

/** The first diagnostic of parsing `text`, as `line:col code message`. */
function errorOf(text: string): string {
  const f = file(text);
  try {
    parseDsl(f);
  } catch (e) {
    if (!(e instanceof ModelcError)) throw e;
    const d = e.diagnostics[0]!;
    const { line, col } = f.position(d.span!.start);
    return `${line}:${col} ${d.code} ${d.message}`;
  }
  throw new Error(`no error for ${JSON.stringify(text)}`);
}

const seedMlp = `# The Keras MLP of the seed article
model seed_mlp {
  input x: [16]
  dense(64, kernel_initializer: uniform)
  batchnorm
  tanh
  dropout(0.5)
  train {
    loss: binary_crossentropy
    optimizer: sgd(learning_rate: 0.01)
    batch_size: 16
    epochs: 50
  }
}
`;

const resBlock = `model res_block {
  input x: [32, 32, 16]
  a = conv2d(x, filters: 16, kernel_size: 3, padding: same) -> batchnorm -> relu
  b = conv2d(a, filters: 16, kernel_size: 3, padding: same) -> batchnorm
  y = add(x, b) -> relu
  output y
}
`;

describe('parsing', () => {
  it('maps the seed MLP to the JSON contract', () => {
    expect(parse(seedMlp).spec).toEqual({
      name: 'seed_mlp',
      inputs: [{ name: 'x', shape: [16] }],
      layers: [
        { type: 'dense', units: 64, kernel_initializer: 'uniform' },
        { type: 'batchnorm' },
        { type: 'tanh' },
        { type: 'dropout', rate: 0.5 },
      ],
      training: { loss: 'binary_crossentropy', optimizer: { type: 'sgd', learning_rate: 0.01 }, batch_size: 16, epochs: 50 },
    });
  });

  it('gives inputs to the first call of a chain and the name to its last', () => {
    const conv = { type: 'conv2d', filters: 16, kernel_size: 3, padding: 'same' };
    expect(specOf(resBlock).layers).toEqual([
      { ...conv, inputs: ['x'] },
      { type: 'batchnorm' },
      { type: 'relu', name: 'a' },
      { ...conv, inputs: ['a'] },
      { type: 'batchnorm', name: 'b' },
      { type: 'add', inputs: ['x', 'b'] },
      { type: 'relu', name: 'y' },
    ]);
    expect(specOf(resBlock).outputs).toEqual(['y']);
  });

  it('reads values, reuse, backtick names, name: and semicolons', () => {
    const spec = specOf(
      'model m { input `in put`: [2e1, -1.5]; `my dense` = dense(`in put`, 8, bias_initializer: constant(value: -0.5))\n' +
        'reuse `my dense`(x2, name: "again") -> activation(activation: "tanh")\n' +
        'flatten(k: {a: [true, false, null], "b c": "\\u00e9\\n"})\n output `my dense`, again\n}',
    );
    expect(spec.inputs).toEqual([{ name: 'in put', shape: [20, -1.5] }]);
    expect(spec.layers).toEqual([
      { type: 'dense', name: 'my dense', inputs: ['in put'], units: 8, bias_initializer: { type: 'constant', value: -0.5 } },
      { reuse: 'my dense', name: 'again', inputs: ['x2'] },
      { type: 'activation', activation: 'tanh' },
      { type: 'flatten', k: { a: [true, false, null], 'b c': 'é\n' } },
    ]);
    expect(spec.outputs).toEqual(['my dense', 'again']);
  });

  it('takes CRLF line ends, continuation lines after -> and multi-line arguments', () => {
    const spec = specOf('model m {\r\n  a = dense(x,\r\n    8) ->  # more\r\n    relu\r\n}\r\n');
    expect(spec.layers).toEqual([{ type: 'dense', inputs: ['x'], units: 8 }, { type: 'relu', name: 'a' }]);
  });

  it('leaves semantics to validation: an empty model parses', () => {
    expect(parse('model empty {\n}\n').spec).toEqual({ name: 'empty', inputs: [], layers: [] });
  });

  it('records the span of every part of the spec', () => {
    const text = resBlock.replace('output y', 'output y\n  train { optimizer: adam(learning_rate: 0.1) }');
    const { locations } = parse(text);
    const f = file(text);
    const at = (path: (string | number)[], key = false) => {
      const s = key ? locations.key(path) : locations.value(path);
      const { line, col } = f.position(s.start);
      return `${line}:${col} ${text.slice(s.start, s.end)}`;
    };
    expect(at(['name'])).toBe('1:7 res_block');
    expect(at(['inputs', 0, 'shape', 1])).toBe('2:17 32');
    expect(at(['layers', 0])).toBe('3:7 conv2d(x, filters: 16, kernel_size: 3, padding: same)');
    expect(at(['layers', 0, 'type'])).toBe('3:7 conv2d');
    expect(at(['layers', 0, 'inputs', 0])).toBe('3:14 x');
    expect(at(['layers', 0, 'kernel_size'], true)).toBe('3:30 kernel_size');
    expect(at(['layers', 0, 'kernel_size'])).toBe('3:43 3');
    expect(at(['layers', 2, 'name'])).toBe('3:3 a');
    expect(at(['layers', 5, 'inputs'])).toBe('5:11 x, b');
    expect(at(['outputs', 0])).toBe('6:10 y');
    expect(at(['training', 'optimizer', 'learning_rate'], true)).toBe('7:27 learning_rate');
    expect(at(['training', 'optimizer', 'type'])).toBe('7:22 adam');
    const positional = parse('model m {\n  dense(64)\n}').locations;
    expect(positional.key(['layers', 0, 'units'])).toEqual(positional.value(['layers', 0, 'units']));
  });
});

describe('errors', () => {
  test.each([
    ['missing )', 'model m {\n  dense(64\n  relu\n}', "3:3 syntax expected ',' or ')' after argument, found 'relu'"],
    ['unterminated string', 'model m {\n  dense(8, padding: "same)\n}', '2:21 syntax unterminated string (strings end on the same line)'],
    ['bad character', 'model m {\n  dense(8) @ relu\n}', "2:12 syntax unexpected character '@'"],
    ['= without chain', 'model m {\n  input x: [4]\n  y =\n  output y\n}', '3:6 syntax expected a layer call, found end of line'],
    [
      'input reference in a later call',
      'model m {\n  y = dense(x, 8) -> activation(relu)\n}',
      "2:33 syntax 'relu' is an input reference, but only the first call of a chain takes inputs (the others take the previous layer); for a string attribute write 'key: relu'",
    ],
    ['unknown layer type with positional args', 'model m {\n  dense(8)\n  dens(64)\n}', "3:3 unknownLayer unknown layer type 'dens'; did you mean 'dense'?"],
    ['too many positional args', 'model m {\n  dense(64, 32)\n}', '2:13 attributeType dense takes 1 positional attribute (units), got 2'],
    ['positional args for a layer without any', 'model m {\n  relu(0.5)\n}', '2:8 attributeType relu takes no positional attributes, got 1'],
    ['duplicate keyword', 'model m {\n  dense(units: 8, use_bias: true, units: 9)\n}', "2:35 syntax duplicate key 'units'"],
    ['keyword and positional', 'model m {\n  dense(8, units: 9)\n}', "2:12 syntax duplicate key 'units' (also given positionally)"],
    ['named twice', 'model m {\n  a = dense(8, name: b)\n}', "2:16 syntax duplicate key 'name' (the layer is already named by 'a =')"],
    ['positional after keyword', 'model m {\n  dense(units: 8, 3)\n}', '2:19 syntax positional argument after keyword arguments'],
    ['junk after a statement', 'model m {\n  dense(8) relu\n}', "2:12 syntax expected '->' or end of line, found 'relu'"],
    ['missing }', 'model m {\n  dense(8)\n', "3:1 syntax unexpected end of file: missing '}'"],
    ['missing , in a list', 'model m {\n  conv2d(8, [3 3])\n}', "2:16 syntax expected ',' or ']' after list element, found '3'"],
    ['keyword as a value', 'model m {\n  conv2d(8, padding: input)\n}', '2:22 syntax \'input\' is a keyword; quote it as a string ("input") or a name (`input`)'],
    ['bad escape', 'model m {\n  dense(8, name: "a\\qb")\n}', "2:20 syntax invalid escape '\\q' (valid: \\\" \\\\ \\/ \\` \\b \\f \\n \\r \\t \\uXXXX)"],
    ['two outputs', 'model m {\n  dense(8)\n  output a\n  output b\n}', "4:3 syntax a model has one 'output' statement (the first is on line 3)"],
    ['two train blocks', 'model m {\n  train { loss: mse }\n  train { loss: mae }\n}', "3:3 syntax a model has one 'train' block (the first is on line 2)"],
    ['two models', 'model a {\n}\nmodel b {\n}', "3:1 syntax a .nn file holds one model; 'a' is already defined"],
    ['reuse with an attribute', 'model m {\n  reuse d(x, units: 3)\n}', "2:14 unknownAttribute reuse takes only input references and 'name:', not 'units'"],
    ['positional in a value call', 'model m {\n  dense(8, kernel_initializer: constant(1))\n}', '2:41 syntax a call in a value takes keyword arguments only: constant(key: value, ...)'],
    ['non-ASCII outside quotes', 'model m {\n  dense(8, name: é)\n}', "2:18 syntax unexpected character 'é' (U+00E9); names with characters other than A-Z, a-z, 0-9 and _ are written in backticks"],
    ['empty file', '', "1:1 syntax expected 'model', found end of file"],
    ['absurd nesting', `model m {\n  dense(k: ${'['.repeat(20000)})\n}`, '1:1 syntax the model nests too deeply to parse'],
  ])('%s', (_, text, expected) => {
    expect(errorOf(text)).toBe(expected);
  });
});

describe('printing', () => {
  it('prints the examples in canonical form, as a fixpoint', () => {
    expect(fmt(seedMlp)).toBe(seedMlp);
    const res = fmt(resBlock);
    expect(res).toBe(resBlock); // calls that name inputs keep their attributes as keywords
    expect(fmt(res)).toBe(res);
  });

  it('keeps activation layers and activation shorthands apart', () => {
    const spec = specOf('model m {\n  input x: [2]\n  tanh\n  activation(activation: tanh)\n}');
    expect(spec.layers).toEqual([{ type: 'tanh' }, { type: 'activation', activation: 'tanh' }]);
    expect(printDsl(spec)).toContain('  tanh\n  activation(activation: tanh)\n');
  });

  it('quotes keywords and other names, and drops $schema', () => {
    const spec = {
      $schema: 'https://modelc.dev/schema/model.schema.json',
      name: 'input',
      inputs: [{ name: 'true', shape: [3] }],
      layers: [{ type: 'dense', name: 'a `b`\\', inputs: ['true'], units: 2, activation: 'null', kernel_initializer: { type: 'zeros' } }],
      outputs: ['a `b`\\'],
    } as ModelSpec;
    expect(printDsl(spec)).toBe(
      'model input {\n  input `true`: [3]\n  `a \\`b\\`\\\\` = dense(`true`, units: 2, activation: "null", kernel_initializer: zeros())\n  output `a \\`b\\`\\\\`\n}\n',
    );
  });

  it('chains layers after explicit inputs until a named layer', () => {
    const spec = {
      name: 'm',
      inputs: [{ name: 'x', shape: [4] }],
      layers: [{ type: 'dense', units: 4 }, { type: 'relu' }, { type: 'dense', inputs: ['x'], units: 2 }, { type: 'relu' }, { type: 'add', inputs: ['x', 'dense'] }],
    } as ModelSpec;
    expect(printDsl(spec)).toBe('model m {\n  input x: [4]\n  dense(4)\n  relu\n  dense(x, units: 2) -> relu\n  add(x, dense)\n}\n');
  });
});

describe('comments', () => {
  const commented = `# header

model m {  # after the brace
  # the input
  input x: [4]  # four features

  # hidden
  h = dense(x,
    8,  # units
    activation: relu) -> dropout(0.1)
  output h
  train {
    # loss
    loss: mse  # mean squared
    # before the brace
  }  # after train
  # closing
}  # the end
# footer
`;

  it('survive fmt, attached to their statements', () => {
    const expected = `# header
model m {
  # after the brace
  # the input
  input x: [4]  # four features

  # hidden
  # units
  h = dense(x, units: 8, activation: relu) -> dropout(0.1)
  output h
  train {
    # loss
    loss: mse  # mean squared
    # before the brace
  }  # after train
  # closing
}  # the end
# footer
`;
    expect(fmt(commented)).toBe(expected);
    expect(fmt(expected)).toBe(expected);
  });
});

// ---- properties over random specs --------------------------------------------

const hostile = fc.constantFrom(
  '"); globalThis.x=1; ("',
  '*/ throw 1 /*',
  'my layer',
  'back`tick',
  'quote"d',
  'back\\slash',
  'ünïcödé',
  '😀',
  '',
  'a\nb',
  '\t',
  '# not a comment',
  '->',
  'x = y',
  '\u2028',
  '\ud800',
  'model',
  'input',
  'output',
  'train',
  'reuse',
  'true',
  'false',
  'null',
);
const plain = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,6}$/);
const anyName = fc.oneof(
  { weight: 4, arbitrary: plain },
  { weight: 2, arbitrary: hostile },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 6 }) },
);
/** Attribute and member keys, `__proto__` included (kept as a plain key, as JSON.parse does). */
const anyKey = anyName;

const { json } = fc.letrec<{ json: unknown }>((tie) => ({
  json: fc.oneof(
    { depthSize: 'small' },
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.boolean(),
    fc.constant(null),
    anyName,
    fc.array(tie('json'), { maxLength: 3 }),
    fc.dictionary(anyKey, tie('json'), { maxKeys: 3, noNullPrototype: true }),
    fc.tuple(anyName, fc.dictionary(anyKey, tie('json'), { maxKeys: 2, noNullPrototype: true })).map(([type, rest]) => ({ type, ...rest })),
  ),
}));

/** An object with the defined entries of `parts`, in order. */
function compact(parts: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(parts).filter(([, v]) => v !== undefined));
}

const heads = ['type', 'reuse', 'name', 'inputs'];
/** `a` or (more often) nothing, so that chains form. */
const maybe = <T>(a: fc.Arbitrary<T>) => fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 2, arbitrary: a });
const inputRefs = fc.array(anyName, { minLength: 1, maxLength: 3 });

const typedLayer = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...layerTypes()) }, { weight: 1, arbitrary: anyName }).chain((type) => {
  const attrNames = [...Object.keys(getLayer(type)?.attrs ?? {}), 'extra', 'my attr'];
  const attrValue = fc.oneof(fc.integer({ min: -3, max: 300 }), fc.array(fc.integer({ min: 1, max: 5 }), { maxLength: 2 }), json);
  return fc
    .record({
      name: maybe(anyName),
      inputs: maybe(inputRefs),
      attrs: fc.dictionary(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...attrNames) }, { weight: 1, arbitrary: anyKey }).filter((k) => !heads.includes(k)), attrValue, {
        maxKeys: 4,
        noNullPrototype: true,
      }),
    })
    .map(({ name, inputs, attrs }) => compact({ type, name, inputs, ...attrs }));
});

const reuseLayer = fc
  .record({ reuse: anyName, name: maybe(anyName), inputs: maybe(inputRefs) })
  .map((r) => compact({ ...r }));

const training = fc
  .record({
    loss: anyName,
    optimizer: fc.oneof(anyName, fc.record({ type: fc.constantFrom('sgd', 'adam'), learning_rate: fc.double({ min: 1e-6, max: 1, noNaN: true }) })),
    batch_size: maybe(fc.integer({ min: 1, max: 512 })),
    more: fc.dictionary(anyKey, json, { maxKeys: 2, noNullPrototype: true }),
  })
  .map(({ more, ...known }) => compact({ ...more, ...known }));

const specs = fc
  .record({
    name: fc.oneof(plain, fc.constantFrom('model', 'input', 'train')),
    inputs: fc.array(fc.record({ name: anyName, shape: fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 3 }) }), {
      minLength: 1,
      maxLength: 3,
    }),
    layers: fc.array(fc.oneof({ weight: 4, arbitrary: typedLayer }, { weight: 1, arbitrary: reuseLayer }), { minLength: 1, maxLength: 8 }),
    outputs: maybe(fc.array(anyName, { minLength: 1, maxLength: 2 })),
    training: maybe(training),
  })
  .map((s) => compact(s) as unknown as ModelSpec);

describe('round trips', () => {
  it('JSON -> DSL -> JSON is exact and printing is a fixpoint of parsing', () => {
    for (const example of [seedMlp, resBlock]) {
      const spec = specOf(example);
      expect(JSON.stringify(specOf(printDsl(spec)))).toBe(JSON.stringify(canonicalize(spec)));
    }
    fc.assert(
      fc.property(specs, (spec) => {
        const text = printDsl(spec);
        const back = specOf(text);
        expect(JSON.stringify(back)).toBe(JSON.stringify(canonicalize(spec)));
        expect(printDsl(back)).toBe(text);
      }),
      { numRuns: 400 },
    );
  });

  it('fmt keeps every comment wherever it is put, and is stable', () => {
    const placed = fc.tuple(specs, fc.array(fc.tuple(fc.nat(), fc.boolean(), fc.string({ maxLength: 8 })), { maxLength: 6 }));
    fc.assert(
      fc.property(placed, ([spec, comments]) => {
        const lines = printDsl(spec).trimEnd().split('\n');
        const texts: string[] = [];
        comments.forEach(([where, trailing, body], i) => {
          const text = ` c${i} ${body.replace(/[\r\n]/g, ' ')}`;
          texts.push(text);
          const at = where % (lines.length + 1);
          if (trailing && at < lines.length && !lines[at]!.includes(' #')) lines[at] += `  #${text}`;
          else lines.splice(at, 0, `  #${text}`);
        });
        const once = fmt(lines.join('\n') + '\n');
        for (const t of texts) expect(once).toContain(`#${t}`);
        expect(fmt(once)).toBe(once);
      }),
      { numRuns: 200 },
    );
  });

  it('random and mutated text fails only with located ModelcErrors', () => {
    const dslish = fc.string({ unit: fc.constantFrom(...'abmodelinputx_ 09\n\t#"`\\()[]{},:;=->.+éu'.split('')), maxLength: 60 });
    const mutated = fc
      .tuple(specs, fc.array(fc.tuple(fc.nat(), fc.nat({ max: 4 }), fc.string({ maxLength: 3 })), { minLength: 1, maxLength: 3 }))
      .map(([spec, edits]) => {
        let text = printDsl(spec);
        for (const [at, remove, insert] of edits) {
          const i = at % (text.length + 1);
          text = text.slice(0, i) + insert + text.slice(i + remove);
        }
        return text;
      });
    fc.assert(
      fc.property(fc.oneof(dslish, mutated, fc.string({ unit: 'binary' })), (text) => {
        try {
          parse(text);
        } catch (e) {
          expect(e).toBeInstanceOf(ModelcError);
          const s = (e as ModelcError).diagnostics[0]!.span!;
          expect(s.start).toBeGreaterThanOrEqual(0);
          expect(s.end).toBeGreaterThanOrEqual(s.start);
          expect(s.end).toBeLessThanOrEqual(text.length);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
