#!/usr/bin/env node
// The executable entry of `jenkins-oidc` (package.json bin, the Docker image's
// ENTRYPOINT): nothing but main(). The commands are declared in program.ts and
// commands/*.ts, which tests import without running anything; nothing imports
// this file, so it runs main() unconditionally.
import { main } from './program.js';

await main();
