// jest runs the TypeScript sources directly through @swc/jest as ESM
// (NODE_OPTIONS=--experimental-vm-modules, set by `npm test`).
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } }],
  },
  // Sources import './x.js' (NodeNext style); under jest they resolve to x.ts.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  globalSetup: '<rootDir>/test/helpers/global-setup.mjs',
  globalTeardown: '<rootDir>/test/helpers/global-teardown.mjs',
  // Many tests start services (serve processes, PostgreSQL, workers): on a busy
  // machine (2 cores, load average 15) one took longer than 60 s with nothing
  // wrong. A bound only decides how long a hung test takes to fail.
  testTimeout: 180_000,
  maxWorkers: 2,
};
