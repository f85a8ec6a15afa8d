// Retries with full-jitter exponential backoff: attempt n waits a random time
// between 0 and min(cap, base * 2^n), so many builds retrying against a
// throttled STS (or a restarting token service) spread out instead of
// arriving together. Only failures the caller classifies as transient are
// retried; a refusal is final on the first answer.
export interface RetryOptions {
  /** Total attempts, including the first. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Told before each wait (for a one-line note on stderr). */
  onRetry?: (info: { attempt: number; maxAttempts: number; delayMs: number; reason: string }) => void;
}

export interface Classified {
  retry: boolean;
  /** Short, safe to print: an error code, never a credential. */
  reason: string;
}

export function backoffDelay(attempt: number, baseDelayMs: number, maxDelayMs: number, random = Math.random): number {
  return Math.floor(random() * Math.min(maxDelayMs, baseDelayMs * 2 ** attempt));
}

export async function withRetries<T>(fn: (attempt: number) => Promise<T>, classify: (err: unknown) => Classified, options: RetryOptions): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await fn(attempt);
    } catch (err) {
      const { retry, reason } = classify(err);
      if (!retry || attempt >= options.maxAttempts) throw err;
      const delayMs = backoffDelay(attempt - 1, options.baseDelayMs, options.maxDelayMs);
      options.onRetry?.({ attempt, maxAttempts: options.maxAttempts, delayMs, reason });
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}
