// The suite runs on the Node it is meant to. .ci/run runs it on Node 24 LTS
// (twice), on Node 22 (the oldest package.json engines allows), and the build
// agent's tests with the agent on Node 18; each step says which major it expects (EXPECT_NODE_MAJOR, and
// EXPECT_AGENT_NODE_MAJOR for the agent's node), and this file checks it from
// inside the run: a PATH that quietly kept another node would otherwise pass
// as a run "on Node 24".
import { readFileSync } from 'node:fs';
import { AGENT_NODE, runNode } from './helpers/agent.js';
import { toolsRequired } from './helpers/tools.js';

const major = (version: string) => Number(version.replace(/^v/, '').split('.')[0]);

/** `test`, or where the expectation is not given: a failure in CI, a skip elsewhere. */
function withExpectation(name: string, expected: string | undefined, fn: (major: number) => Promise<void>): void {
  if (expected) test(`${name} (${expected})`, () => fn(Number(expected)));
  else if (toolsRequired()) test(name, () => {
    throw new Error(`${name}: .ci/run must say which Node major this step runs on`);
  });
  else test.skip(`${name}: not asked for (set it as .ci/run does)`, () => undefined);
}

test('the Node running the suite meets package.json engines', () => {
  const engines = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { engines: { node: string } }).engines.node;
  const [, wantMajor, wantMinor] = /^>=(\d+)\.(\d+)$/.exec(engines)!;
  const [haveMajor, haveMinor] = process.versions.node.split('.').map(Number) as [number, number];
  expect(haveMajor > Number(wantMajor) || (haveMajor === Number(wantMajor) && haveMinor >= Number(wantMinor))).toBe(true);
});

withExpectation('jest runs on the Node major of EXPECT_NODE_MAJOR', process.env.EXPECT_NODE_MAJOR, async (expected) => {
  expect(major(process.version)).toBe(expected);
});

withExpectation('the build agent runs on the Node major of EXPECT_AGENT_NODE_MAJOR', process.env.EXPECT_AGENT_NODE_MAJOR, async (expected) => {
  // The very binary the agent tests run the bundle with (TEST_AGENT_NODE, else this one).
  const r = await runNode(['-p', 'process.version'], {}, 60_000, AGENT_NODE);
  expect(r.code).toBe(0);
  expect(major(r.stdout.trim())).toBe(expected);
});
