// The V8 heap `serve` runs with. V8 sizes a process's heap for the machine,
// not for the service: on a host with 24 GB it lets the young generation grow
// to 128 MB and the old one to about 120 MB of mostly garbage before its
// first full collection, and a process keeps the memory it reached. Measured
// with the bench (ES256 exchange and GET /id-token at 64 connections, Node 24,
// docs/performance.md "Memory"): 292 MB resident under load with V8's
// defaults, 133 MB with the two flags below, for the same CPU per request
// within the machine's noise.
//
// These are start-up flags: V8 reads them when it creates the heap, so a
// running process cannot take them (v8.setFlagsFromString changes nothing
// for the semi-space). `serve` therefore replaces itself once, before it
// loads anything, with the same command and these flags (process.execve: the
// same PID, so systemd, Kubernetes and signals see one process). Workers and
// the preparation child are forked with the primary's flags, so they have
// them too. A flag the operator set already (node's command line or
// NODE_OPTIONS) is left as the operator set it.
import type { Config } from '../config.js';

/**
 * - young generation: 2 x 8 MB semi-spaces instead of up to 2 x 64 MB;
 * - old generation: after each full collection, room for 30 % more than what
 *   survived before the next, instead of V8's factor of 1.1 to 4.
 */
export const SERVE_HEAP_FLAGS = ['--max-semi-space-size=8', '--heap-growing-percent=30'] as const;

/** OPTIMIZE_FOR=memory: V8 also optimizes for size (1.6 to 1.8 times the CPU per request, docs/performance.md). */
export const MEMORY_FLAGS = ['--optimize-for-size'] as const;

/** Set on the replacement process: it never replaces itself again. */
export const RUNTIME_VARIABLE = 'JENKINS_OIDC_RUNTIME';

/** The flags `serve` wants and does not have yet: none the operator set already. */
export function missingFlags(config: Pick<Config, 'optimizeFor'>, execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const wanted = [...SERVE_HEAP_FLAGS, ...(config.optimizeFor === 'memory' ? MEMORY_FLAGS : [])];
  const given = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].map(flagName);
  return wanted.filter((flag) => !given.includes(flagName(flag)));
}

/** `--max-semi-space-size=8` and `--max_semi_space_size 8` name one flag. */
function flagName(arg: string): string {
  return arg.split('=')[0]!.replaceAll('_', '-');
}

/**
 * Replaces this process with itself plus the flags it lacks. Returns only
 * when there is nothing to add, when it already is the replacement, when it
 * has an IPC channel, or on a Node without process.execve (before 22.15);
 * then with the flags it runs without, for `serve` to warn about.
 */
export function applyServeRuntime(config: Pick<Config, 'optimizeFor'>): string[] {
  const missing = missingFlags(config, process.execArgv, process.env.NODE_OPTIONS);
  // A process with an IPC channel (forked by a process manager, or a cluster
  // worker of one) keeps it only as long as it stays the same program: it is
  // not replaced. Workers of `serve` itself inherit the flags instead.
  if (missing.length === 0 || process.env[RUNTIME_VARIABLE] === '1' || typeof process.execve !== 'function' || process.channel) return missing;
  try {
    process.execve(process.execPath, [process.execPath, ...missing, ...process.execArgv, ...process.argv.slice(1)], {
      ...process.env,
      [RUNTIME_VARIABLE]: '1',
    });
  } catch {
    // The binary could not be executed again (replaced or removed by an
    // upgrade while it ran): serve on as it is, with the warning.
  }
  return missing; // reached only when process.execve failed
}
