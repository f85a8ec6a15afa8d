// Runs the built agent bundle (dist/agent/jenkins-oidc-agent.mjs, made by
// `npm test`) as a build would: a child process with a clean environment.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const AGENT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/agent/jenkins-oidc-agent.mjs');

export interface AgentResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runNode(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<AgentResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node ${args.join(' ')} timed out\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export function runAgent(args: string[], env: Record<string, string>, timeoutMs?: number): Promise<AgentResult> {
  return runNode([AGENT, ...args], env, timeoutMs);
}
