import { InputError } from '../../src/claims/text.js';

/** The InputError message `fn` throws ("field: reason"), or 'accepted'. */
export function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof InputError) return err.message;
    throw err;
  }
  return 'accepted';
}
