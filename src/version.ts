// The service's version, from package.json: `jenkins-oidc --version`, /healthz
// and the jenkins_oidc_build_info metric say the same thing.
import { createRequire } from 'node:module';

// dist/version.js and src/version.ts both sit one folder below package.json.
export const VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;
