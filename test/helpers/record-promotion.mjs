// Preloaded into `serve` (NODE_OPTIONS=--import=...) by the test that keeps a
// request's objects young (test/http/young-requests.test.ts). The first
// SIGUSR2 starts V8's GC profiler and writes "<PROMOTION_REPORT>.started"; the
// second stops it and writes PROMOTION_REPORT: for the minor collections in
// between, how many there were and how many bytes the old generation grew by
// in them (what they promoted), and how many full collections ran.
import { renameSync, writeFileSync } from 'node:fs';
import v8 from 'node:v8';

const report = process.env.PROMOTION_REPORT;
// Only the process that serves: `serve` replaces itself once (src/process/runtime.ts).
if (report && process.env.JENKINS_OIDC_RUNTIME === '1') {
  let profiler;
  process.on('SIGUSR2', () => {
    if (!profiler) {
      profiler = new v8.GCProfiler();
      profiler.start();
      writeFileSync(`${report}.started`, '');
      return;
    }
    const { statistics } = profiler.stop();
    profiler = undefined;
    const oldUsed = (stats) => stats.heapSpaceStatistics.filter((s) => s.spaceName === 'old_space' || s.spaceName === 'large_object_space').reduce((sum, s) => sum + s.spaceUsedSize, 0);
    const minor = statistics.filter((s) => s.gcType === 'Scavenge');
    // Written aside and renamed: the test polls for the file, and must never read it half-written.
    writeFileSync(`${report}.partial`, JSON.stringify({
      minorCollections: minor.length,
      promotedBytes: minor.reduce((sum, s) => sum + Math.max(0, oldUsed(s.afterGC) - oldUsed(s.beforeGC)), 0),
      fullCollections: statistics.filter((s) => s.gcType === 'MarkSweepCompact').length,
    }));
    renameSync(`${report}.partial`, report);
  });
}
