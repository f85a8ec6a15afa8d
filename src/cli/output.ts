// Printing is kept apart from the commands: a command returns data, and the
// CLI shows it either as JSON (--json, for scripts) or as text for humans.
import { once } from 'node:events';

/**
 * Text for a human's terminal. Audit rows hold what callers sent (an audience,
 * a client_id, a job), so a value with a newline, an ANSI escape sequence or a
 * bidi override could otherwise print a fake line or recolour a real one.
 * Control, format and line-separator characters become visible escapes (\n,
 * \x1b, \u202e) and a backslash becomes \\, so every escaped text reads back
 * to exactly one value. JSON output stays exact JSON (see safeJson).
 */
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Cs}\u2028\u2029\\]/gu;
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\\': '\\\\' };

export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    const named = NAMED[c];
    if (named) return named;
    const code = c.codePointAt(0)!;
    if (code < 0x100) return `\\x${code.toString(16).padStart(2, '0')}`;
    if (code < 0x10000) return `\\u${code.toString(16).padStart(4, '0')}`;
    return `\\u{${code.toString(16)}}`;
  });
}

/**
 * JSON.stringify, with the characters it leaves raw but a terminal may act on
 * (DEL, C1 controls such as CSI, bidi and other format characters, line
 * separators) written as \u escapes: still exact JSON (a parser reads back
 * the same values), and `cat`-ing it cannot drive the terminal.
 */
const RAW_IN_JSON = /[\u007f-\u009f\p{Cf}\p{Co}\p{Cn}\u2028\u2029]/gu;

export function safeJson(value: unknown, indent?: number): string {
  // split(''): an astral character becomes its two UTF-16 escapes, as JSON spells it.
  return JSON.stringify(value, null, indent).replace(RAW_IN_JSON, (c) => c.split('').map((u) => `\\u${u.charCodeAt(0).toString(16).padStart(4, '0')}`).join(''));
}

export function printJson(value: unknown): void {
  process.stdout.write(`${safeJson(value, 2)}\n`);
}

export function printTable<T extends object>(rows: T[], columns: (keyof T & string)[]): void {
  if (rows.length === 0) {
    process.stdout.write('(none)\n');
    return;
  }
  const cell = (v: unknown) => printable(Array.isArray(v) ? v.join(',') : v === null || v === undefined ? '-' : String(v));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  // Headers in snake_case (build_number, jenkins_url), not BUILDNUMBER or JENKINSURL.
  process.stdout.write(`${line(columns.map((c) => c.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`)))}\n`);
  for (const r of rows) process.stdout.write(`${line(columns.map((c) => cell(r[c])))}\n`);
}

export function printRecord(record: Record<string, unknown>): void {
  const width = Math.max(...Object.keys(record).map((k) => k.length));
  for (const [k, v] of Object.entries(record)) {
    process.stdout.write(`${k.padEnd(width)}  ${printable(Array.isArray(v) ? v.join(', ') : String(v))}\n`);
  }
}

export function note(message: string): void {
  process.stderr.write(`${message}\n`);
}

/**
 * stdout for a long stream (`audit export`): waits when the reader is slower
 * than the database (backpressure), and fails instead of hanging or crashing
 * when the reader goes away (EPIPE from `| head`, a dead forwarder).
 */
export class StdoutStream {
  private failure: Error | undefined;
  private readonly onError = (err: Error) => {
    this.failure = err;
  };

  constructor(private readonly out: NodeJS.WriteStream = process.stdout) {
    // Never removed: an EPIPE can still arrive after the last write.
    out.on('error', this.onError);
  }

  async write(chunk: string): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.out.write(chunk)) return;
    // once() rejects if 'error' comes first.
    await once(this.out, 'drain');
  }
}
