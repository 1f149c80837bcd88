import { ratio as fmtRatio } from './format.js';
import { meetsTarget, type Row } from './scenario.js';

const HEADERS = ['#', 'scenario', 'measure', 'value', 'ratio', 'target', '', 'notes'] as const;

function cells(row: Row): string[] {
  const met = row.ratio ? meetsTarget(row.ratio) : undefined;
  return [
    row.id,
    row.scenario,
    row.measure,
    row.value,
    row.ratio ? `${fmtRatio(row.ratio.value)} = ${row.ratio.of}` : '',
    row.ratio?.target ? `${row.ratio.target.op} ${row.ratio.target.value}` : '',
    met === undefined ? '' : met ? 'ok' : 'MISS',
    row.note ?? '',
  ];
}

/** Renders one target's rows as a plain-text table, with a title and notes under it. */
export function renderTable(title: string, rows: readonly Row[], notes: readonly string[]): string {
  const body = rows.map(cells);
  const widths = HEADERS.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (r: readonly string[]): string =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const rule = '-'.repeat(Math.min(160, widths.reduce((a, b) => a + b + 2, 0)));
  return [title, rule, line(HEADERS), rule, ...body.map(line), rule, ...notes.map((n) => `  ${n}`)].join('\n');
}
