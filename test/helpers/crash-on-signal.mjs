// Preloaded into a `serve` process (NODE_OPTIONS=--import=...) by the crash
// test: on SIGUSR2 the process meets an uncaught exception or an unhandled
// rejection (CRASH_MODE), as a bug would produce one.
process.on('SIGUSR2', () => {
  setImmediate(() => {
    if (process.env.CRASH_MODE === 'reject') void Promise.reject(new Error('crash test: rejected'));
    else throw new Error('crash test: thrown');
  });
});
