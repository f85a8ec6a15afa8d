// Waiting for a condition instead of for a fixed time. A test that sleeps
// 200 ms and then asserts passes on a quiet machine and fails on a busy one;
// a test that waits for what it needs (a log line, a count, a row) passes on
// both, and when the condition never comes it fails with a message that says
// what it was waiting for.
//
// The bound is generous on purpose: it only decides how long a broken product
// takes to fail the test, never whether a working one passes.
export interface WaitOptions {
  /** How long before giving up; default 60 s (a jest test has 180 s). */
  timeoutMs?: number;
  /** Between two probes; default 25 ms. */
  intervalMs?: number;
  /** Appended to the timeout error: what the test saw meanwhile (a log, a response). */
  detail?: () => string;
}

export const WAIT_TIMEOUT_MS = 60_000;

/** What a probe returns when the condition holds (`cond && value` gives `false | value`). */
export type Truthy<T> = Exclude<T, false | 0 | '' | null | undefined>;

/**
 * Resolves with the first truthy value `probe` returns (it may be async);
 * rejects, naming `what`, when none came within the timeout. A probe that
 * throws is a failure of the test, not a "not yet": it rejects at once.
 */
export async function waitFor<T>(what: string, probe: () => T | Promise<T>, options: WaitOptions = {}): Promise<Truthy<T>> {
  const timeoutMs = options.timeoutMs ?? WAIT_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value as Truthy<T>;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${options.detail ? `\n${options.detail()}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 25));
  }
}

/** No process has this pid any more (a zombie still counts as there: its parent has not reaped it). */
export function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  return false;
}
