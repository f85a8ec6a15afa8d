import { rmSync } from 'node:fs';

export default async function globalTeardown() {
  await globalThis.__EMBEDDED_PG__?.stop();
  if (globalThis.__TEST_TMP__) rmSync(globalThis.__TEST_TMP__, { recursive: true, force: true });
}
