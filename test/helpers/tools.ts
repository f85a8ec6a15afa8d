// Checks that need something besides the Node dependencies (groovy,
// systemd-analyze, optional schema packages) run where it is present. Where
// it is missing, in CI (.ci/run exports CI=true; REQUIRE_TOOLS=1 does the same
// by hand) the test file fails naming what to install: a check CI could not
// run must not pass there as a skip. Elsewhere it is skipped with a notice.

/** Whether a missing tool fails the run. */
export function toolsRequired(): boolean {
  return Boolean(process.env.CI || process.env.REQUIRE_TOOLS || process.env.REQUIRE_GROOVY);
}

/** Returns `available`; when false, throws under CI, or warns that `what` is skipped. */
export function checkTool(available: boolean, what: string, install: string): boolean {
  if (available) return true;
  const message = `${what} is not installed: ${install}`;
  if (toolsRequired()) throw new Error(`${message}. .ci/run installs it: CI must not pass a check it could not run`);
  console.warn(`SKIPPED: ${message}`);
  return false;
}
