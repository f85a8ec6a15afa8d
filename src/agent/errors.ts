// How the agent ends. Each failure says what happened in plain words and what
// to do next; the entry file prints it and maps the kind to the exit code.
// Nothing here ever holds a credential or a token: messages are safe to log.
export type FailureKind = 'usage' | 'refused' | 'unavailable';

/** Exit codes, documented in --help. */
export const EXIT = { ok: 0, refused: 1, usage: 2, unavailable: 3 } as const;

export class AgentError extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    /** Extra lines: what it means, what the token carried, what to run next. */
    readonly details: string[] = [],
  ) {
    super(message);
    this.name = 'AgentError';
  }
}

export const usage = (message: string, details: string[] = []) => new AgentError('usage', message, details);

