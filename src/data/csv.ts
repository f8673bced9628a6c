/**
 * CSV training data: a header row naming the columns, then one example per
 * record. The label column (named by `--label`) holds one scalar label per
 * example; every other column is an input feature, in file order, and their
 * number must equal prod(inputShape).
 *
 *   sepal_length,sepal_width,petal_length,petal_width,species
 *   5.1,3.5,1.4,0.2,0
 *
 * Without a label column (`loadCsvInputs`, for `modelc predict`) every column
 * is an input feature.
 *
 * Parsing is csv-parse's (quotes, `\r\n`, cells trimmed, empty lines skipped);
 * a cell must be a decimal number. Every error points at its cell as
 * `file.csv:LINE:COL`: csv-parse reports where each record ends (its byte
 * offset), the next one begins after it, and the cell's column is found from
 * there by re-scanning the record's text (quote-aware).
 */
import { CsvError, parse } from 'csv-parse/sync';
import { fail, q, suggest } from '../diagnostics/diagnostic.js';
import { span, type SourceFile, type Span } from '../diagnostics/source.js';
import { readSource } from '../util/fs.js';
import type { LoadedData, Target } from './types.js';
import { encodeLabels, labelSize, shapeText, type LabelAt } from './labels.js';

interface Row {
  readonly cells: readonly string[];
  /** The offset in the text at which the record begins. */
  readonly start: number;
  /** The offset just past the record (its record delimiter included). */
  readonly end: number;
}

const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * Converts csv-parse's byte offsets (of the UTF-8 text) to offsets in the
 * string; asked with ascending offsets, it walks the text once.
 */
function charOffsets(text: string): (byte: number) => number {
  if (Buffer.byteLength(text) === text.length) return (byte) => Math.min(byte, text.length);
  let at = 0;
  let bytes = 0;
  return (byte) => {
    if (byte < bytes) {
      at = 0;
      bytes = 0;
    }
    while (at < text.length && bytes < byte) {
      const code = text.codePointAt(at)!;
      bytes += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
      at += code >= 0x10000 ? 2 : 1;
    }
    return at;
  };
}

/** The first offset at or after `at` that is not white space (empty lines and the space csv-parse trims). */
function skipBlank(text: string, at: number): number {
  while (at < text.length && /\s/.test(text[at]!)) at++;
  return at;
}

/**
 * The span of cell `col` of `row` in the source text, trimmed, found by
 * scanning the record's text (a line break outside quotes may be part of a
 * cell: csv-parse ends records only at the line break it detected first).
 */
function cellSpan(file: SourceFile, row: Row, col: number): Span {
  const text = file.text;
  const blank = (at: number) => /\s/.test(text[at]!);
  let p = row.start;
  let quoted = false;
  for (let field = 0; field < col && p < row.end; p++) {
    const ch = text[p];
    if (ch === '"') quoted = !quoted;
    else if (ch === ',' && !quoted) field++;
  }
  while (p < row.end && blank(p)) p++;
  let end = p;
  quoted = false;
  for (; end < row.end; end++) {
    const ch = text[end];
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === ',') break;
  }
  while (end > p && blank(end - 1)) end--;
  return span(file, p, end);
}

/** The span of the line that begins at `start`, without its terminator. */
function lineSpan(file: SourceFile, start: number): Span {
  const end = file.text.slice(start).search(/[\r\n]/);
  return span(file, start, end < 0 ? file.text.length : start + end);
}

/**
 * The records of the file with where each begins; csv-parse's errors become
 * located diagnostics. A record begins where the one before it ended
 * (csv-parse's `info.bytes`, just past its record delimiter) after the
 * empty lines and the white space that csv-parse skips.
 */
function parseRows(file: SourceFile): Row[] {
  const text = file.text;
  const toChar = charOffsets(text);
  const rows: Row[] = [];
  let next = skipBlank(text, 0);
  const onRecord = (cells: string[], info: { bytes: number }): string[] => {
    const row = { cells, start: next, end: Math.max(next, toChar(info.bytes)) };
    const header = rows[0];
    if (header && cells.length !== header.cells.length) {
      fail('data', `this row has ${cells.length} cell${cells.length === 1 ? '' : 's'}, but the header has ${header.cells.length}`, lineSpan(file, row.start));
    }
    rows.push(row);
    next = skipBlank(text, row.end);
    return cells;
  };
  try {
    parse(text, { trim: true, skip_empty_lines: true, relax_column_count: true, on_record: onRecord });
  } catch (err) {
    if (!(err instanceof CsvError)) throw err;
    fail('data', `malformed CSV: ${err.message.replace(/ (on|at) line \d+/, '')}`, lineSpan(file, next));
  }
  return rows;
}

/** The column index of `label` in the header row (-1 without one), after checking every column has a name. */
function labelColumn(file: SourceFile, header: Row, label: string | undefined): number {
  const names = header.cells;
  const at = label === undefined ? -1 : names.indexOf(label);
  if (label !== undefined) {
    if (at < 0) {
      const list = names.map(q).join(', ');
      fail('data', `no label column ${q(label)} in the header (columns: ${list})${suggest(label, names)}`, lineSpan(file, header.start));
    }
    const again = names.indexOf(label, at + 1);
    if (again >= 0) fail('data', `the label column ${q(label)} appears twice in the header (columns ${at + 1} and ${again + 1})`, cellSpan(file, header, again));
  }
  const blank = names.indexOf('');
  if (blank >= 0) fail('data', `header column ${blank + 1} has no name`, cellSpan(file, header, blank));
  return at;
}

/** The CSV read into inputs and (with a label column) raw labels; every cell checked and located. */
interface CsvTable {
  readonly file: SourceFile;
  readonly header: Row;
  readonly data: readonly Row[];
  readonly labelAt: number;
  readonly x: Float32Array;
  readonly labels: Float64Array;
  readonly inSize: number;
}

function readTable(path: string, label: string | undefined, target: Pick<Target, 'inputShape'>): CsvTable {
  const file = readSource(path, 'csv');
  const rows = parseRows(file);
  if (rows.length === 0) fail('data', 'the CSV file is empty: expected a header row naming the columns, then one row per example', span(file, 0));
  const header = rows[0]!;
  const labelAt = labelColumn(file, header, label);
  const features = header.cells.filter((_, i) => i !== labelAt);
  const inSize = target.inputShape.reduce((a, b) => a * b, 1);
  if (features.length !== inSize) {
    const which = label === undefined ? 'every column is an input: name a label column with --label' : `every column but the label ${q(label)}`;
    fail(
      'data',
      `the CSV has ${features.length} feature column${features.length === 1 ? '' : 's'} (${which}), ` +
        `but the model takes ${inSize} input${inSize === 1 ? '' : 's'} per example (shape ${shapeText(target.inputShape)})`,
      lineSpan(file, header.start),
    );
  }
  const data = rows.slice(1);
  if (data.length === 0) fail('data', 'the CSV file has a header but no data rows', lineSpan(file, header.start));

  const count = data.length;
  const x = new Float32Array(count * inSize);
  const labels = new Float64Array(labelAt < 0 ? 0 : count);
  data.forEach((row, r) => {
    let f = 0;
    row.cells.forEach((_, c) => {
      const value = cellValue(file, header, row, r, c, c === labelAt);
      if (c === labelAt) labels[r] = value;
      else x[r * inSize + f++] = value;
    });
  });
  return { file, header, data, labelAt, x, labels, inSize };
}

/** A CSV file without a label column (`modelc predict --data x.csv`): every column is an input. */
export function loadCsvInputs(path: string, target: Pick<Target, 'inputShape'>): { x: Float32Array; count: number; description: string } {
  const { x, data, inSize } = readTable(path, undefined, target);
  const count = data.length;
  return { x, count, description: `CSV ${path}: ${count} example${count === 1 ? '' : 's'}, ${inSize} feature${inSize === 1 ? '' : 's'}, no label column` };
}

/** A CSV file's inputs with its `label` column left out and its labels unused (`modelc insert-bn` calibrates on inputs alone). */
export function loadCsvFeatures(path: string, label: string, target: Pick<Target, 'inputShape'>): { x: Float32Array; count: number; description: string } {
  const { x, data, inSize } = readTable(path, label, target);
  const count = data.length;
  return { x, count, description: `CSV ${path}: ${count} example${count === 1 ? '' : 's'}, ${inSize} feature${inSize === 1 ? '' : 's'}, label column ${q(label)} not used` };
}

export function loadCsv(path: string, label: string, target: Target): LoadedData {
  const { file, header, data, labelAt, x, labels, inSize } = readTable(path, label, target);
  const count = data.length;
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
