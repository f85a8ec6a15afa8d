// Builds and starts the kube-apiserver stand-in (kube-apiserver-stand-in/main.go,
// on Debian's go-oidc, the verifier kube-apiserver uses) for one test file.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestCa } from './test-ca.js';

const SOURCE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'kube-apiserver-stand-in/main.go');
const GOPATH = '/usr/share/gocode';
export const GO_OIDC = path.join(GOPATH, 'src/github.com/coreos/go-oidc/oidc.go');

export function goToolchainPresent(): boolean {
  return spawnSync('go', ['version'], { stdio: 'ignore' }).status === 0 && existsSync(GO_OIDC);
}

/** Built once per source version (Debian's Go packages, no module download: GO111MODULE=off). */
export function buildStandIn(): string {
  const hash = createHash('sha256').update(readFileSync(SOURCE)).digest('hex').slice(0, 12);
  const dir = path.join(os.tmpdir(), `jo-kube-stand-in-${process.getuid?.() ?? 'u'}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const binary = path.join(dir, `kube-apiserver-stand-in-${hash}`);
  if (existsSync(binary)) return binary;
  const res = spawnSync('go', ['build', '-o', binary, SOURCE], {
    env: { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), GO111MODULE: 'off', GOPATH, GOCACHE: path.join(dir, 'cache'), GOFLAGS: '' },
    encoding: 'utf8',
  });
  if (res.status !== 0) throw new Error(`go build of the kube-apiserver stand-in failed:\n${res.stderr}`);
  return binary;
}

export interface KubeApiserver {
  url: string;
  /** Lines the stand-in wrote to stderr ("refused: ...", "authenticated: ..."). */
  log: string[];
  setClockOffset(seconds: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startKubeApiserver(binary: string, config: unknown, ca: TestCa): Promise<KubeApiserver> {
  const configFile = path.join(ca.dir, `auth-config-${Date.now()}.json`);
  writeFileSync(configFile, JSON.stringify(config));
  writeFileSync(path.join(ca.dir, 'kube-server.pem'), ca.serverChainPem);
  writeFileSync(path.join(ca.dir, 'kube-server.key'), ca.serverKeyPem, { mode: 0o600 });
  const child: ChildProcess = spawn(binary, ['-config', configFile, '-cert', path.join(ca.dir, 'kube-server.pem'), '-key', path.join(ca.dir, 'kube-server.key'), '-issuer-ca', ca.rootFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log: string[] = [];
  let pending = '';
  child.stderr!.on('data', (c: Buffer) => {
    pending += c.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    log.push(...lines);
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening (https:\/\/\S+)\n/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`kube-apiserver stand-in exited ${code}: ${log.join('\n')}${pending}`)));
  });
  const agent = new https.Agent({ ca: ca.rootPem });
  return {
    url,
    log,
    setClockOffset: (seconds) =>
      new Promise((resolve, reject) => {
        const req = https.request(`${url}/stand-in/clock?offset=${seconds}`, { method: 'POST', agent }, (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 204 ? resolve() : reject(new Error(`clock: HTTP ${res.statusCode}`))));
        });
        req.on('error', reject);
        req.end();
      }),
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      agent.destroy();
    },
  };
}
