// Bundles the build-side CLI (src/agent/main.ts) into one ES module with no
// runtime dependencies, for Node 18 or later: dist/agent/jenkins-oidc-agent.mjs.
// The AWS SDK's STS client is bundled in; the service serves the file (and its
// SHA-256) at /agent/jenkins-oidc-agent.mjs. Not minified, so anyone can read
// what their build agents run; license comments are kept at the end.
import { chmodSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const outfile = path.join(root, 'dist/agent/jenkins-oidc-agent.mjs');

const result = await build({
  absWorkingDir: root,
  entryPoints: ['src/agent/main.ts'],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node18',
  // The SDK ships ES module builds; prefer them over its CommonJS ones.
  mainFields: ['module', 'main'],
  legalComments: 'eof',
  define: { __AGENT_VERSION__: JSON.stringify(version) },
  // Bundled CommonJS code may still call require() for Node built-ins.
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire as __agentCreateRequire } from 'node:module';\nconst require = __agentCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
  metafile: true,
});

// The agent must not pull in server code: refuse the build if it did.
const inputs = Object.keys(result.metafile.inputs);
const forbidden = inputs.filter((f) => /node_modules\/(oidc-provider|koa|@koa|@prisma|prisma|pg|pino)\//.test(f) || /^src\/(server|store|grants|generated)\//.test(f));
if (forbidden.length) {
  console.error(`build-agent: the agent bundle must not include server code:\n  ${forbidden.join('\n  ')}`);
  process.exit(1);
}
chmodSync(outfile, 0o755);
