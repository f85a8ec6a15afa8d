// Preloaded into a process (NODE_OPTIONS=--import=...) by the test that keeps
// Prisma out of `serve`: Prisma loads its WebAssembly query compiler with a
// dynamic import on a process's first query (src/generated/prisma/internal/
// class.ts), and that import is reported on stderr here. A process that never
// prints the line never compiled it.
import { registerHooks } from 'node:module';

registerHooks({
  resolve(specifier, context, nextResolve) {
    if (specifier.includes('query_compiler')) process.stderr.write(`prisma query compiler loaded: ${specifier}\n`);
    return nextResolve(specifier, context);
  },
});
