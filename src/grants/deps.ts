// What a grant handler needs from the running service. Passed in explicitly so
// grants never reach for globals, and tests can build them directly.
import type { AuditTrail } from '../audit/trail.js';
import type { Config } from '../config.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Signer } from '../signing-keys/signer.js';
import type { Db } from '../store/prisma.js';

export interface GrantDeps {
  config: Config;
  db: Db;
  /** Where refusals are recorded (issued tokens are written with the token itself). */
  audit: AuditTrail;
  /** Counts issued tokens and mints from new addresses (absent in tests that do not watch). */
  metrics?: Pick<Metrics, 'tokenIssued' | 'newClientSource'>;
  /** The current signer; read per request because key rotation swaps it. */
  signer(): Signer;
}
