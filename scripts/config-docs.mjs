#!/usr/bin/env node
// Writes the settings table of docs/configuration.md from VARIABLES in
// src/config.ts, the record the service validates against, so the reference
// cannot drift from the code: one source, rendered here. It reads the built
// dist/config.js (run `npm run build` first) because plain node cannot load
// the TypeScript sources and their imports.
//
//   node scripts/config-docs.mjs           rewrite the table between the markers
//   node scripts/config-docs.mjs --check   exit 1 if the committed table differs
//
// test/docs/configuration.test.ts runs the same comparison in the suite.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const DOC = fileURLToPath(new URL('../docs/configuration.md', import.meta.url));
export const BEGIN = '<!-- BEGIN GENERATED: variables -->';
export const END = '<!-- END GENERATED: variables -->';
export const COMMAND = 'npm run build && node scripts/config-docs.mjs';

/** The Markdown table for a VARIABLES record: one row per variable, in its order. */
export function renderTable(variables) {
  // A `|` inside a cell would end it: Markdown tables want it escaped.
  const cell = (text) => text.replaceAll('|', '\\|');
  const rows = Object.entries(variables).map(([name, v]) => `| \`${name}\` | ${cell(v.default)} | ${cell(v.meaning)} |`);
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}

/** The document with its generated part replaced; throws if a marker is missing. */
export function withTable(doc, table) {
  const begin = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  if (begin < 0 || end < begin) throw new Error(`${DOC} must hold the markers ${BEGIN} and ${END}`);
  return `${doc.slice(0, begin + BEGIN.length)}\n${table}\n${doc.slice(end)}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { VARIABLES } = await import('../dist/config.js');
  const current = readFileSync(DOC, 'utf8');
  const wanted = withTable(current, renderTable(VARIABLES));
  if (process.argv.includes('--check')) {
    if (current !== wanted) {
      console.error(`docs/configuration.md differs from src/config.ts's VARIABLES: run \`${COMMAND}\` and commit the result`);
      process.exit(1);
    }
  } else if (current !== wanted) {
    writeFileSync(DOC, wanted);
    console.error('docs/configuration.md: table rewritten from src/config.ts');
  }
}
