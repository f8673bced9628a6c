/**
 * CSV training data: features in file order, labels encoded per loss, and
 * every malformed file reported at its line and column.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelcError } from '../../src/diagnostics/diagnostic.js';
import { renderDiagnostics } from '../../src/diagnostics/render.js';
import { loadData, type Target } from '../../src/data/index.js';
import { tempDir } from '../helpers/cli.js';

const sparse: Target = { inputShape: [2], outputSize: 3, loss: 'sparse_categorical_crossentropy' };

function loadCsv(text: string, target: Target = sparse, label = 'label') {
  const dir = tempDir({ 'data.csv': text });
  return loadData({ kind: 'csv', path: join(dir, 'data.csv'), label }, target);
}

/** The rendered diagnostic, with the temp directory taken out of the path. */
function csvError(text: string, target: Target = sparse, label = 'label'): string {
  const dir = tempDir({ 'data.csv': text });
  try {
    loadData({ kind: 'csv', path: join(dir, 'data.csv'), label }, target);
  } catch (err) {
    if (!(err instanceof ModelcError)) throw err;
    expect(err.diagnostics[0]!.code).toBe(err.diagnostics[0]!.message.startsWith('cannot read') ? 'io' : 'data');
    return renderDiagnostics(err.diagnostics).replaceAll(`${dir}/`, '');
  }
  throw new Error('expected a ModelcError');
}

describe('CSV data', () => {
  it('reads features in file order around the label column, as sparse class indices', () => {
    const data = loadCsv('a,label,b\n1,2,3.5\n-4,0,5e-1\n');
    expect(data.train.count).toBe(2);
    expect(Array.from(data.train.x)).toEqual([1, 3.5, -4, 0.5]);
    expect(Array.from(data.train.y)).toEqual([2, 0]);
    expect(data.labelSize).toBe(1);
    expect(data.test).toBeUndefined();
    expect(data.description).toMatch(/^CSV .*data\.csv: 2 examples, 2 features, label column 'label'$/);
  });

  it('one-hot encodes for categorical_crossentropy and binary_crossentropy with 2 outputs', () => {
    const text = 'x1,x2,label\n0,1,2\n1,0,0\n';
    const categorical = loadCsv(text, { ...sparse, loss: 'categorical_crossentropy' });
    expect(categorical.labelSize).toBe(3);
    expect(Array.from(categorical.train.y)).toEqual([0, 0, 1, 1, 0, 0]);
    const binary = loadCsv('x1,x2,label\n0,1,1\n1,0,0\n', { ...sparse, outputSize: 2, loss: 'binary_crossentropy' });
    expect(Array.from(binary.train.y)).toEqual([0, 1, 1, 0]);
    const regression = loadCsv('x1,x2,label\n0,1,-2.5\n', { ...sparse, outputSize: 1, loss: 'mse' });
    expect(Array.from(regression.train.y)).toEqual([-2.5]);
  });

  it('accepts \\r\\n, a BOM, whitespace, quoted cells and empty lines; shapes to any input shape', () => {
    const data = loadCsv('\ufeff a , b ,"c", d ,label\r\n 1 , 2 ,"3",4, 1 \r\n\r\n5,6,7,8,0\r\n', { ...sparse, inputShape: [2, 2] });
    expect(Array.from(data.train.x)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(Array.from(data.train.y)).toEqual([1, 0]);
  });

  it.each([
    ['an empty file', '', 'data.csv:1:1: error: the CSV file is empty: expected a header row naming the columns, then one row per example'],
    ['a header only', 'a,b,label\n', 'data.csv:1:1: error: the CSV file has a header but no data rows'],
    ['a missing label column', 'a,b,labl\n1,2,0\n', "data.csv:1:1: error: no label column 'label' in the header (columns: 'a', 'b', 'labl'); did you mean 'labl'?"],
    ['a non-numeric cell', 'a,b,label\n1,2,0\n3, four ,1\n', "data.csv:3:4: error: row 2, column 'b': 'four' is not a number\n  3, four ,1\n     ^~~~"],
    ['an empty cell', 'a,b,label\n1,,0\n', "data.csv:2:3: error: row 1, column 'b': the cell is empty; expected a number"],
    ['a non-numeric label', 'a,b,label\n1,2,setosa\n', "data.csv:2:5: error: row 1, column 'label': 'setosa' is not a number (labels are class indices or numbers)"],
    ['a short row', 'a,b,label\n1,2,0\n3,4\n', 'data.csv:3:1: error: this row has 2 cells, but the header has 3\n  3,4\n  ^~~'],
    ['a long row', 'a,b,label\n1,2,0,9\n', 'data.csv:2:1: error: this row has 4 cells, but the header has 3'],
    ['a label out of range', 'a,b,label\n1,2,0\n1,2,0\n1,2,3\n', "data.csv:4:5: error: row 3, column 'label': class 3 is out of range [0, 3)"],
    ['a fractional class', 'a,b,label\n1,2,0.5\n', "data.csv:2:5: error: row 1, column 'label': class 0.5 is not an integer class index in [0, 3)"],
    ['too many features', 'a,b,c,label\n1,2,3,0\n', "data.csv:1:1: error: the CSV has 3 feature columns (every column but the label 'label'), but the model takes 2 inputs per example (shape [2])"],
    ['an unclosed quote', 'a,b,label\n1,2,0\n"3,4,1\n', 'data.csv:3:1: error: malformed CSV: Quote Not Closed: the parsing is finished with an opening quote'],
    ['a float32 overflow', 'a,b,label\n1,1e39,0\n', "data.csv:2:3: error: row 1, column 'b': 1e39 is out of the float32 range"],
    ['a label column named twice', 'label,a,label\n1,2,0\n', "data.csv:1:9: error: the label column 'label' appears twice in the header (columns 1 and 3)"],
  ])('locates %s', (_, text, expected) => {
    expect(csvError(text)).toContain(expected);
  });

  it('locates cells in and after quoted cells that span lines', () => {
    expect(csvError('a,"b\nc",label\n1,x,0\n')).toContain("data.csv:3:3: error: row 1, column 'b\nc': 'x' is not a number");
    expect(csvError('a,b,label\n"1",2,0\n"x\ny",2,0\n')).toContain("data.csv:3:1: error: row 2, column 'a': 'x\ny' is not a number");
    expect(csvError('a,b,label\n"1","x\ny",0\n')).toContain("data.csv:2:5: error: row 1, column 'b'");
  });

  // Found by test/cli/fuzz-readers.test.ts: csv-parse counts every \r and \n inside quotes as a line,
  // and \r\r\n as three; locations now come from where each record ends, not from line counts.
  it('locates cells whatever the line breaks: \\r in quotes, \\r alone, \\r\\r\\n, a stray \\r in a cell', () => {
    expect(csvError('a,b,label\n"1\r2",1,0\n')).toContain("data.csv:2:1: error: row 1, column 'a'");
    expect(csvError('"a\r\n",b,label\r\n1,2,0\r\n\r\n1,x,0\r\n')).toContain("data.csv:5:3: error: row 2, column 'b': 'x' is not a number");
    expect(csvError('a,b,label\r1,2,0\r1,x,0\r')).toContain("data.csv:1:19: error: row 2, column 'b': 'x' is not a number");
    expect(csvError('a,b,label\r\r\n1,2,0\r\r\nx,2,0\r\r\n')).toContain("data.csv:3:1: error: row 2, column 'a': 'x' is not a number");
    expect(csvError('a,b,label\n1,2\r3,0\n')).toContain("data.csv:2:3: error: row 1, column 'b': '2\r3' is not a number");
    expect(csvError('a,b,label\n1,2,0\n\n  é,2\n')).toContain('data.csv:4:3: error: this row has 2 cells, but the header has 3');
  });

  it('names the label column for a model output a scalar label cannot fill', () => {
    expect(csvError('a,b,label\n1,2,0\n', { ...sparse, outputSize: 2, loss: 'mse' })).toContain(
      "data.csv:1:5: error: the label column 'label' holds one value per example: mse takes 2 values per example (the model's output size), but the labels have 1 value per example",
    );
  });

  it('reports an unreadable file as an io error naming the path', () => {
    const dir = tempDir();
    expect(() => loadData({ kind: 'csv', path: join(dir, 'missing.csv'), label: 'y' }, sparse)).toThrow('cannot read file: no such file or directory');
  });
});
