// Errors a command can end with. Each says what is wrong and, where there is
// one, which command to run next; the CLI (cli/program.ts) prints `message`
// and `advice`, and exits 1.
export class DomainError extends Error {
  constructor(message: string, readonly advice?: string) {
    super(message);
    this.name = 'DomainError';
  }
}

export class NotFoundError extends DomainError {
  constructor(what: string, advice?: string) {
    super(`${what} not found`, advice);
    this.name = 'NotFoundError';
  }
}
