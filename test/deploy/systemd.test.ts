// deploy/systemd/jenkins-oidc.service: systemd reads it without complaint
// (systemd-analyze; .ci/run installs it, and CI fails without it), it
// supervises node itself, and its stop timeout covers the service's shutdown
// sequence.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, parseDuration, VARIABLES } from '../../src/config.js';
import { checkTool } from '../helpers/tools.js';

const DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../deploy/systemd');
const UNIT = path.join(DIR, 'jenkins-oidc.service');
const settings = (text: string) =>
  Object.fromEntries(
    text
      .split('\n')
      .filter((l) => /^\w+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
const unit = settings(readFileSync(UNIT, 'utf8'));
const hasAnalyze = checkTool(spawnSync('systemd-analyze', ['--version']).status === 0, 'systemd-analyze', 'apt-get install -y systemd');

(hasAnalyze ? test : test.skip)('systemd-analyze verify finds nothing to say', () => {
  const r = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' });
  expect({ status: r.status, output: `${r.stdout}${r.stderr}`.trim() }).toEqual({ status: 0, output: '' });
});

test('runs node itself, restarts on failure, and only node gets the SIGTERM', () => {
  expect(unit.ExecStart).toBe('/usr/bin/node dist/cli/main.js serve');
  expect(unit).toMatchObject({ Restart: 'on-failure', KillMode: 'mixed', KillSignal: 'SIGTERM', User: 'jenkins-oidc', NoNewPrivileges: 'yes', ProtectSystem: 'strict' });
  // V8's JIT needs writable and executable memory.
  expect(unit.MemoryDenyWriteExecute).toBeUndefined();
});

test('TimeoutStopSec covers SHUTDOWN_GRACE + SHUTDOWN_TIMEOUT (their defaults) and stopping PostgreSQL', () => {
  const { shutdownGrace, shutdownTimeout } = loadConfig({}, '/srv');
  expect(shutdownGrace + shutdownTimeout).toBe(15);
  expect(parseDuration(unit.TimeoutStopSec!)).toBeGreaterThanOrEqual(shutdownGrace + shutdownTimeout + 10);
});

test('the key-encryption key arrives as a credential file, and the settings file names only known variables', () => {
  expect(readFileSync(UNIT, 'utf8')).toContain('Environment=KEY_ENCRYPTION_KEY_FILE=%d/key-encryption-key');
  const env = settings(readFileSync(path.join(DIR, 'jenkins-oidc.env'), 'utf8'));
  expect(Object.keys(env).filter((k) => !(k in VARIABLES))).toEqual([]);
  expect(env.KEY_ENCRYPTION_KEY).toBeUndefined();
});
