// Every relative link in the Markdown a reader follows (README.md, docs/,
// SECURITY.md, CHANGELOG.md) leads somewhere: the file or folder exists and,
// for a #fragment, the target has a heading with that anchor. The docs moved
// between files once (issue 21); this keeps a moved section from leaving a
// dead link behind.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');
const FILES = ['README.md', 'SECURITY.md', 'CHANGELOG.md', ...readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** Lines outside fenced code blocks: a link inside one is an example, not a link. */
function prose(text: string): string[] {
  let fenced = false;
  return text.split('\n').filter((line) => {
    if (/^\s*```/.test(line)) fenced = !fenced;
    return !fenced && !/^\s*```/.test(line);
  });
}

/** GitHub's anchor for a heading (and explicit <a id> anchors): lower case, punctuation dropped, spaces to hyphens; repeats get -1, -2. */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of prose(text)) {
    // An explicit <a id="..."></a> is an anchor too.
    for (const [, id] of line.matchAll(/<a id="([^"]+)"><\/a>/g)) out.add(id!);
    const m = /^#{1,6}\s+(.*)$/.exec(line);
    if (!m) continue;
    const slug = m[1]!.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return out;
}

test('every relative link and anchor in README.md and docs/ resolves', () => {
  const broken: string[] = [];
  for (const file of FILES) {
    const text = readFileSync(path.join(ROOT, file), 'utf8');
    // Inline code spans hold examples such as `[x](y)`: drop them first.
    const lines = prose(text).map((line) => line.replace(/`[^`]*`/g, ''));
    for (const line of lines) {
      for (const [, target] of line.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/i.test(target!)) continue; // https:, mailto:
        const [pathPart, fragment] = target!.split('#') as [string, string | undefined];
        const resolved = pathPart ? path.resolve(path.dirname(path.join(ROOT, file)), pathPart) : path.join(ROOT, file);
        if (!existsSync(resolved)) {
          broken.push(`${file}: ${target} (no such file)`);
          continue;
        }
        if (fragment !== undefined && statSync(resolved).isFile() && resolved.endsWith('.md') && !anchors(readFileSync(resolved, 'utf8')).has(fragment)) {
          broken.push(`${file}: ${target} (no heading with that anchor)`);
        }
      }
    }
  }
  expect(broken).toEqual([]);
});
