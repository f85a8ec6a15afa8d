// Files that hold a token or point at one: created with mode 0600 (folders
// 0700), and replaced atomically (write a sibling, then rename) so a reader
// such as an AWS SDK refreshing its credentials never sees half a token.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * createDirs false: the folder must exist (a refresher must not bring back a
 * folder the build removed). replaceOnly: the file must still exist at the
 * last moment, else nothing is written and an ENOENT error is thrown (a
 * refresher must not bring back a file the build removed while it fetched).
 */
export function writePrivateFile(file: string, content: string, { createDirs = true, replaceOnly = false } = {}): void {
  const dir = path.dirname(path.resolve(file));
  if (createDirs) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    writeFileSync(tmp, content, { mode: 0o600, flag: 'wx' });
    // The umask cannot widen 0600, but a pre-existing target keeps its own mode: the rename replaces it.
    chmodSync(tmp, 0o600);
    if (replaceOnly && !existsSync(file)) throw Object.assign(new Error(`${file} was removed`), { code: 'ENOENT' });
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

export function quoteShell(value: string): string {
  return /^[A-Za-z0-9_./:=@,+-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * One argument of a credential_process line. Single quotes mean the same to
 * /bin/sh (the JS and Go SDKs) and to Python's shlex (the AWS CLI, boto3);
 * double quotes do not ("\$" keeps its backslash under shlex). Control
 * characters are refused: a newline would add lines to the config file.
 */
export function quoteCommandArg(value: string): string {
  if (/[\u0000-\u001f\u007f]/.test(value)) throw new Error(`refusing to write a control character into an AWS config file: ${JSON.stringify(value)}`);
  return quoteShell(value);
}
