/**
 * CSV training data: a header row naming the columns, then one example per
 * record. The label column (named by `--label`) holds one scalar label per
 * example; every other column is an input feature, in file order, and their
 * number must equal prod(inputShape).
 *
 *   sepal_length,sepal_width,petal_length,petal_width,species
 *   5.1,3.5,1.4,0.2,0
 *
 * Parsing is csv-parse's (quotes, `\r\n`, cells trimmed, empty lines skipped);
 * a cell must be a decimal number. Every error points at its cell as
 * `file.csv:LINE:COL`: csv-parse reports the line on which each record ends,
 * and the cell's column is found by re-scanning the record's text (quote-aware).
 */
import { CsvError, parse } from 'csv-parse/sync';
import { fail, q, suggest } from '../diagnostics/diagnostic.js';
import { span, type SourceFile, type Span } from '../diagnostics/source.js';
import { readSource } from '../util/fs.js';
import type { LoadedData, Target } from './types.js';
import { encodeLabels, inputSize, labelSize, shapeText, type LabelAt } from './labels.js';

interface Row {
  readonly cells: readonly string[];
  /** 1-based line on which the record ends (csv-parse's `info.lines`). */
  readonly endLine: number;
}

const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/** The 1-based line on which `row` starts: its end line less the newlines inside quoted cells. */
function startLine(row: Row): number {
  let newlines = 0;
  for (const cell of row.cells) for (const ch of cell) if (ch === '\n') newlines++;
  return row.endLine - newlines;
}

/** The span of cell `col` of `row` in the source text (trimmed), found by scanning from the row's first line. */
function cellSpan(file: SourceFile, row: Row, col: number): Span {
  const text = file.text;
  let p = file.lineStarts[startLine(row) - 1] ?? text.length;
  let quoted = false;
  for (let field = 0; field < col && p < text.length; p++) {
    const ch = text[p];
    if (ch === '"') quoted = !quoted;
    else if (ch === ',' && !quoted) field++;
  }
  while (text[p] === ' ' || text[p] === '\t') p++;
  let end = p;
  quoted = false;
  for (; end < text.length; end++) {
    const ch = text[end];
    if (ch === '"') quoted = !quoted;
    else if (!quoted && (ch === ',' || ch === '\n' || ch === '\r')) break;
  }
  while (end > p && (text[end - 1] === ' ' || text[end - 1] === '\t')) end--;
  return span(file, p, end);
}

/** The span of a whole line (1-based), without its terminator. */
function lineSpan(file: SourceFile, line: number): Span {
  const start = file.lineStarts[line - 1] ?? file.text.length;
  return span(file, start, start + file.lineText(line).length);
}

/** The records of the file with their end lines; csv-parse's errors become located diagnostics. */
function parseRows(file: SourceFile): Row[] {
  let records: { record: string[]; info: { lines: number } }[];
  try {
    records = parse(file.text, { info: true, trim: true, skip_empty_lines: true }) as unknown as typeof records;
  } catch (err) {
    if (!(err instanceof CsvError)) throw err;
    const line = typeof err['lines'] === 'number' ? err['lines'] : 1;
    if (err.code === 'CSV_RECORD_INCONSISTENT_FIELDS_LENGTH' && Array.isArray(err['record'])) {
      const expected = err.message.match(/expect (\d+)/)?.[1] ?? '?';
      fail('data', `this row has ${err['record'].length} cells, but the header has ${expected}`, lineSpan(file, line));
    }
    fail('data', `malformed CSV: ${err.message.replace(/ (on|at) line \d+/, '')}`, lineSpan(file, line));
  }
  return records.map(({ record, info }) => ({ cells: record, endLine: info.lines }));
}

/** The column index of `label` in the header row. */
function labelColumn(file: SourceFile, header: Row, label: string): number {
  const names = header.cells;
  const at = names.indexOf(label);
  const where = lineSpan(file, startLine(header));
  if (at < 0) {
    const list = names.map(q).join(', ');
    fail('data', `no label column ${q(label)} in the header (columns: ${list})${suggest(label, names)}`, where);
  }
  const again = names.indexOf(label, at + 1);
  if (again >= 0) fail('data', `the label column ${q(label)} appears twice in the header (columns ${at + 1} and ${again + 1})`, cellSpan(file, header, again));
  const blank = names.indexOf('');
  if (blank >= 0) fail('data', `header column ${blank + 1} has no name`, cellSpan(file, header, blank));
  return at;
}

export function loadCsv(path: string, label: string, target: Target): LoadedData {
  const file = readSource(path);
  const rows = parseRows(file);
  if (rows.length === 0) fail('data', 'the CSV file is empty: expected a header row naming the columns, then one row per example', span(file, 0));
  const header = rows[0]!;
  const labelAt = labelColumn(file, header, label);
  const features = header.cells.filter((_, i) => i !== labelAt);
  const inSize = inputSize(target);
  if (features.length !== inSize) {
    fail(
      'data',
      `the CSV has ${features.length} feature column${features.length === 1 ? '' : 's'} (every column but the label ${q(label)}), ` +
        `but the model takes ${inSize} input${inSize === 1 ? '' : 's'} per example (shape ${shapeText(target.inputShape)})`,
      lineSpan(file, startLine(header)),
    );
  }
  const data = rows.slice(1);
  if (data.length === 0) fail('data', 'the CSV file has a header but no data rows', lineSpan(file, startLine(header)));

  const count = data.length;
  const x = new Float32Array(count * inSize);
  const labels = new Float64Array(count);
  data.forEach((row, r) => {
    let f = 0;
    row.cells.forEach((_, c) => {
      const value = cellValue(file, header, row, r, c, c === labelAt);
      if (c === labelAt) labels[r] = value;
      else x[r * inSize + f++] = value;
    });
  });
  const fault = (message: string, at?: LabelAt): never => {
    if (at === undefined) return fail('data', `the label column ${q(label)} holds one value per example: ${message}`, cellSpan(file, header, labelAt));
    return fail('data', `row ${at.row + 1}, column ${q(label)}: ${message}`, cellSpan(file, data[at.row]!, labelAt));
  };
  const y = encodeLabels(labels, count, 1, target, fault);
  return {
    train: { x, y, count },
    labelSize: labelSize(target),
    description: `CSV ${path}: ${count} example${count === 1 ? '' : 's'}, ${inSize} feature${inSize === 1 ? '' : 's'}, label column ${q(label)}`,
  };
}

/** The number in cell `c` of data row `r` (0-based), or a located error. */
function cellValue(file: SourceFile, header: Row, row: Row, r: number, c: number, isLabel: boolean): number {
  const cell = row.cells[c]!;
  const where = `row ${r + 1}, column ${q(header.cells[c]!)}`;
  if (cell === '') fail('data', `${where}: the cell is empty; expected a number`, cellSpan(file, row, c));
  const hint = isLabel ? ' (labels are class indices or numbers)' : '';
  if (!NUMBER.test(cell)) fail('data', `${where}: ${q(cell)} is not a number${hint}`, cellSpan(file, row, c));
  const value = Number(cell);
  if (!Number.isFinite(Math.fround(value))) fail('data', `${where}: ${cell} is out of the float32 range`, cellSpan(file, row, c));
  return value;
}
