// Runs `prisma generate` without downloading anything. The Prisma CLI insists
// on locating its native schema engine even though generating the Rust-free
// client never runs it; pointing PRISMA_SCHEMA_ENGINE_BINARY at any existing
// file (here: the node binary) satisfies that check offline.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const env = { ...process.env };
env.PRISMA_SCHEMA_ENGINE_BINARY ||= process.execPath;
env.PRISMA_HIDE_UPDATE_MESSAGE = '1';
const cli = require.resolve('prisma/build/index.js');
const result = spawnSync(process.execPath, [cli, 'generate'], { stdio: 'inherit', env });
process.exit(result.status ?? 1);
