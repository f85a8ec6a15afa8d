// Human output escapes what could drive a terminal: each character class that
// could print a fake line, move the cursor or reorder text becomes visible.
import { printable } from '../../src/cli/output.js';

test.each<[string, string, string]>([
  ['plain text is unchanged', 'team/app/main sts.amazonaws.com', 'team/app/main sts.amazonaws.com'],
  ['non-ASCII letters are unchanged', 'équipe/アプリ', 'équipe/アプリ'],
  ['newline', 'a\nb', 'a\\nb'],
  ['carriage return (overwrites the line)', 'a\rb', 'a\\rb'],
  ['tab', 'a\tb', 'a\\tb'],
  ['ANSI escape sequence', '\u001b[31mred\u001b[0m', '\\x1b[31mred\\x1b[0m'],
  ['NUL and BEL', '\u0000\u0007', '\\x00\\x07'],
  ['DEL', '\u007f', '\\x7f'],
  ['C1 control CSI (an escape sequence on its own in some terminals)', '\u009b2J', '\\x9b2J'],
  ['Unicode line and paragraph separators', '\u2028\u2029', '\\u2028\\u2029'],
  ['bidi override (reorders what follows)', 'abc\u202edef', 'abc\\u202edef'],
  ['zero-width space', 'a\u200bb', 'a\\u200bb'],
  ['byte order mark', '\ufeffx', '\\ufeffx'],
  ['a lone surrogate', 'a\ud800b', 'a\\ud800b'],
  ['a private-use character outside the BMP', '\u{F0000}', '\\u{f0000}'],
  ['a backslash is doubled, so a typed "\\n" never reads as a newline', 'a\\nb', 'a\\\\nb'],
])('%s', (_name, input, expected) => {
  expect(printable(input)).toBe(expected);
});
