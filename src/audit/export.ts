// `audit export` formats: one row in, one line out, so the CLI can stream.
//
// JSONL is the exact record: one JSON object per line with the fields of
// `audit list --json`, nothing altered (characters a terminal could act on are
// \u-escaped, which a JSON parser reads back as the same value).
//
// CSV is for spreadsheets and tools that want columns: RFC 4180 (a header row,
// CRLF line ends, a field quoted when it holds a quote, comma, CR or LF, quotes
// doubled), and safe to open in a spreadsheet: attacker-chosen text (an
// audience or client_id on a refusal) that starts with = + - @ (or a tab or CR)
// would run as a formula, so such a cell gets a leading ' (OWASP's advice).
// That changes the value: feed a SIEM JSONL when exact values matter.
import { safeJson } from '../cli/output.js';
import type { Db } from '../store/prisma.js';
import { AUDIT_FIELDS, auditRows, type AuditFilter, type AuditView } from './query.js';

export const EXPORT_FORMATS = ['jsonl', 'csv'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export function jsonLine(row: AuditView): string {
  return `${safeJson(row)}\n`;
}

const FORMULA_START = /^[=+\-@\t\r]/;
const NEEDS_QUOTES = /[",\r\n]/;

export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  let text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  if (FORMULA_START.test(text)) text = `'${text}`;
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function csvHeader(): string {
  return `${AUDIT_FIELDS.join(',')}\r\n`;
}

export function csvLine(row: AuditView): string {
  return `${AUDIT_FIELDS.map((f) => csvCell(row[f])).join(',')}\r\n`;
}

/** Lines go out in chunks of about this size: one write per row would be a system call per row. */
const CHUNK = 65_536;

/**
 * Streams every row matching `filter` to `write`, in `format`; resolves to the
 * number of rows. `write` may wait (a slow reader) and may throw (a reader that
 * went away), which ends the export.
 */
export async function exportAudit(
  db: Db,
  filter: AuditFilter,
  format: ExportFormat,
  write: (chunk: string) => Promise<void>,
  onProgress?: (rows: number) => void,
): Promise<number> {
  const line = format === 'csv' ? csvLine : jsonLine;
  let chunk = format === 'csv' ? csvHeader() : '';
  let rows = 0;
  for await (const row of auditRows(db, filter)) {
    chunk += line(row);
    rows += 1;
    if (chunk.length >= CHUNK) {
      await write(chunk);
      chunk = '';
    }
    if (rows % 100_000 === 0) onProgress?.(rows);
  }
  if (chunk) await write(chunk);
  return rows;
}
