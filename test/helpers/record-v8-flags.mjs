// Preloaded into a `serve` process (NODE_OPTIONS=--import=...) by the
// OPTIMIZE_FOR test: every V8 flag the process sets for itself is reported on
// stderr (a pipe: written at once), so the test sees what serve asked of V8.
import v8 from 'node:v8';

const set = v8.setFlagsFromString.bind(v8);
v8.setFlagsFromString = (flags) => {
  process.stderr.write(`v8.setFlagsFromString(${JSON.stringify(flags)})\n`);
  set(flags);
};
