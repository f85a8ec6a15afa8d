// Preloaded into a `serve` process (NODE_OPTIONS=--import=...) by the
// runtime tests: each process that loads it (the one started, and the one it
// replaces itself with) reports its pid, its node flags and its largest
// possible young generation on stderr (a pipe: written at once), so the test
// sees what the service runs with, not what it meant to ask for.
import v8 from 'node:v8';

// The heap's limit counts the young generation at its largest (3 semi-spaces),
// so it shows whether --max-semi-space-size took: 4,288 MB with V8's defaults
// on a large host, 4,120 MB with 8 MB semi-spaces.
const heapSizeLimitMb = Math.round(v8.getHeapStatistics().heap_size_limit / 1048576);
process.stderr.write(`runtime: ${JSON.stringify({ pid: process.pid, execArgv: process.execArgv, heapSizeLimitMb })}\n`);
