/**
 * A CSV of numeric features and one label column (RFC 4180 fields: commas, double quotes
 * around a field, "" for a quote inside one; a quoted field does not span lines).
 *
 * The label column is the last one unless `label` names it (a header name, or a 0-based
 * column number). The first line is a header when `label` is a name, when `header` says so,
 * or (`header: 'auto'`) when one of its feature fields is not a number. Labels that are all
 * integers 0..254 are the classes themselves; any other labels are class names, numbered in
 * sorted order. Blank lines are skipped.
 *
 * Guarantees: every problem is a DataError naming the file and the line (1-based, as an editor
 * shows it) and, for a bad value, the column by name and number: a field count that differs
 * from the first row's, an empty or non-numeric feature (NaN and ±Infinity included), an
 * empty label, an unterminated quote, more than 255 classes.
 */
import { readFile } from 'node:fs/promises';
import { DataError } from './errors.ts';

export interface CsvOptions {
  /** Header name or 0-based column number of the label; default the last column. */
  label?: string | number;
  /** Whether the first line is a header; default 'auto'. */
  header?: boolean | 'auto';
}

export interface CsvTable {
  /** count × features values, row-major. */
  values: Float64Array;
  labels: Uint8Array;
  count: number;
  features: number;
  /** Feature column names (the header's, or `column <n>`). */
  featureNames: string[];
  classes: number;
  /** Class names by label, when the labels were not 0..254 integers. */
  labelNames?: string[];
  /** 1-based line of each sample in the file. */
  lines: Uint32Array;
}

/** Splits one CSV line into fields; throws (with `where`) on an unterminated quote. */
function splitLine(line: string, file: string, where: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        const close = line.indexOf('"', i);
        if (close < 0) throw new DataError(file, `${where}: a quoted field is not closed`);
        value += line.slice(i, close);
        if (line[close + 1] === '"') {
          value += '"';
          i = close + 2;
          continue;
        }
        i = close + 1;
        break;
      }
      fields.push(value);
      if (i >= line.length) return fields;
      if (line[i] !== ',') {
        throw new DataError(file, `${where}: text after a closing quote (column ${fields.length})`);
      }
      i++;
    } else {
      const comma = line.indexOf(',', i);
      if (comma < 0) {
        fields.push(line.slice(i));
        return fields;
      }
      fields.push(line.slice(i, comma));
      i = comma + 1;
    }
  }
}

function isNumber(field: string): boolean {
  const trimmed = field.trim();
  return trimmed !== '' && Number.isFinite(Number(trimmed));
}

/** Parses CSV text; `file` names it in errors. */
export function parseCsv(text: string, file: string, options: CsvOptions = {}): CsvTable {
  const rows: { line: number; fields: string[] }[] = [];
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    let line = lines[n]!;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (n === 0 && line.startsWith('\uFEFF')) line = line.slice(1);
    if (line.trim() === '') continue;
    rows.push({ line: n + 1, fields: splitLine(line, file, `line ${n + 1}`) });
  }
  if (rows.length === 0) throw new DataError(file, 'no rows (the file is empty)');
  const width = rows[0]!.fields.length;
  if (width < 2) {
    throw new DataError(
      file,
      `line ${rows[0]!.line}: ${width} column; a CSV needs at least one feature and a label`,
    );
  }

  let labelColumn: number;
  let header: boolean;
  if (typeof options.label === 'string' && !/^\d+$/.test(options.label)) {
    const names = rows[0]!.fields.map((f) => f.trim());
    labelColumn = names.indexOf(options.label);
    if (labelColumn < 0) {
      throw new DataError(
        file,
        `line ${rows[0]!.line} (header): no column named "${options.label}" (columns: ${names.join(', ')})`,
      );
    }
    if (options.header === false) {
      throw new DataError(
        file,
        `--label "${options.label}" names a column, so line 1 must be a header`,
      );
    }
    header = true;
  } else {
    labelColumn = options.label === undefined ? width - 1 : Number(options.label);
    if (!Number.isInteger(labelColumn) || labelColumn < 0 || labelColumn >= width) {
      throw new DataError(
        file,
        `label column ${String(options.label)} is out of range: line ${rows[0]!.line} has ${width} columns (0..${width - 1})`,
      );
    }
    header =
      options.header === undefined || options.header === 'auto'
        ? rows[0]!.fields.some((f, c) => c !== labelColumn && !isNumber(f))
        : options.header;
  }

  const names = header
    ? rows[0]!.fields.map((f, c) => f.trim() || `column ${c}`)
    : rows[0]!.fields.map((_, c) => `column ${c}`);
  const featureColumns = names.map((_, c) => c).filter((c) => c !== labelColumn);
  const dataRows = header ? rows.slice(1) : rows;
  if (dataRows.length === 0) throw new DataError(file, 'a header but no data rows');
  const features = featureColumns.length;
  const count = dataRows.length;
  const values = new Float64Array(count * features);
  const rawLabels: string[] = new Array<string>(count);
  const lineOf = new Uint32Array(count);
  dataRows.forEach((row, r) => {
    if (row.fields.length !== width) {
      throw new DataError(
        file,
        `line ${row.line}: ${row.fields.length} fields, expected ${width} (as on line ${rows[0]!.line})`,
      );
    }
    lineOf[r] = row.line;
    featureColumns.forEach((c, i) => {
      const field = row.fields[c]!;
      const value = field.trim() === '' ? NaN : Number(field.trim());
      if (!Number.isFinite(value)) {
        throw new DataError(
          file,
          `line ${row.line}, column "${names[c]}" (${c}): ${field.trim() === '' ? 'empty' : `"${field}" is not a finite number`}`,
        );
      }
      values[r * features + i] = value;
    });
    const label = row.fields[labelColumn]!.trim();
    if (label === '') {
      throw new DataError(
        file,
        `line ${row.line}, label column "${names[labelColumn]}" (${labelColumn}): empty`,
      );
    }
    rawLabels[r] = label;
  });

  const labels = new Uint8Array(count);
  const numeric = rawLabels.every((l) => /^\d+$/.test(l) && Number(l) <= 254);
  let classes: number;
  let labelNames: string[] | undefined;
  if (numeric) {
    let max = 0;
    rawLabels.forEach((l, r) => {
      labels[r] = Number(l);
      max = Math.max(max, labels[r]!);
    });
    classes = max + 1;
  } else {
    labelNames = [...new Set(rawLabels)].sort();
    if (labelNames.length > 255) {
      throw new DataError(
        file,
        `label column "${names[labelColumn]}": ${labelNames.length} distinct labels, at most 255 classes`,
      );
    }
    const index = new Map(labelNames.map((name, i) => [name, i]));
    rawLabels.forEach((l, r) => (labels[r] = index.get(l)!));
    classes = labelNames.length;
  }
  if (classes < 2) {
    throw new DataError(
      file,
      `label column "${names[labelColumn]}": one class only, nothing to learn`,
    );
  }
  return {
    values,
    labels,
    count,
    features,
    featureNames: featureColumns.map((c) => names[c]!),
    classes,
    ...(labelNames ? { labelNames } : {}),
    lines: lineOf,
  };
}

export async function readCsv(file: string, options: CsvOptions = {}): Promise<CsvTable> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new DataError(file, `cannot read the file (${(error as Error).message})`);
  }
  return parseCsv(text, file, options);
}
