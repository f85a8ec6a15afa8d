// Fetches the jenkins-oidc agent bundle from the token service onto a build
// agent and checks it against the SHA-256 the controller obtained from the
// service. Node 18+ only (global fetch); no other dependency.
const { createHash } = require('node:crypto');
const { writeFileSync } = require('node:fs');

const [url, expected, out] = process.argv.slice(2);
fetch(url)
  .then(async (res) => {
    if (!res.ok) throw new Error(`HTTP ${res.status} from ${url}`);
    const body = Buffer.from(await res.arrayBuffer());
    const actual = createHash('sha256').update(body).digest('hex');
    if (actual !== expected) throw new Error(`SHA-256 mismatch: expected ${expected}, got ${actual}`);
    writeFileSync(out, body, { mode: 0o600 });
  })
  .catch((err) => {
    console.error(`jenkins-oidc: cannot fetch the agent: ${err.message}`);
    process.exit(1);
  });
