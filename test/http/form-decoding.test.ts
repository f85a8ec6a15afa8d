// checkForm (http/edge.ts) decodes every query and form a request carries; its
// decoder skips plain ASCII and writes escapes into one buffer (the token
// path's largest allocation was its array of numbers per value). The exact
// pairs it returns, and the exact refusals, for each kind of input.
import { checkForm, EdgeError } from '../../src/http/edge.js';

test.each([
  ['plain ASCII, returned as it is', 'job=team/app&build_number=7', [['job', 'team/app'], ['build_number', '7']]],
  ['escapes, upper and lower case', 'grant_type=urn%3Aietf%3aparams&x=%2F%2f', [['grant_type', 'urn:ietf:params'], ['x', '//']]],
  ['+ is a space, %2B a plus', 'a=1+2&b=1%2B2', [['a', '1 2'], ['b', '1+2']]],
  ['escaped UTF-8 and raw non-ASCII alike', 'job=caf%C3%A9&name=café&k=%F0%9F%94%91', [['job', 'café'], ['name', 'café'], ['k', '🔑']]],
  ['an empty value, a name alone, empty pairs', 'a=&b&&c=1', [['a', ''], ['b', ''], ['c', '1']]],
  ['ASCII punctuation that needs no decoding', "v=a*b(c)!'~_.-:@,;$", [['v', "a*b(c)!'~_.-:@,;$"]]],
] as const)('%s', (_, raw, pairs) => {
  expect(checkForm(raw, 'form')).toEqual(pairs);
});

test.each([
  ['a percent sign at the end', 'job=abc%', 'parameter "job" has a malformed percent-escape'],
  ['one hex digit at the end', 'job=abc%4', 'parameter "job" has a malformed percent-escape'],
  ['a non-hex escape', 'job=%G1', 'parameter "job" has a malformed percent-escape'],
  ['invalid UTF-8', 'job=team%FFapp', 'parameter "job" is not valid UTF-8'],
  ['a lone continuation byte', 'job=%80', 'parameter "job" is not valid UTF-8'],
  ['an escaped NUL', 'job=a%00b', 'parameter "job" must not contain control characters'],
  ['a raw control character', 'job=a\u0001b', 'parameter "job" must not contain control characters'],
  ['a malformed name', '%ZZ=1', 'a form parameter name has a malformed percent-escape'],
] as const)('refused: %s', (_, raw, message) => {
  let thrown: unknown;
  try {
    checkForm(raw, 'form');
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(EdgeError);
  expect([(thrown as EdgeError).status, (thrown as EdgeError).description]).toEqual([400, message]);
});
