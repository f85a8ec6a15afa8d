-- Defence in depth for a controller's client secret (a secret can leak
-- through Jenkins in ways no library can prevent):
-- - allowed_sources: CIDRs a controller may mint and revoke from; empty: any.
-- - the previous secret, still accepted until previous_secret_expires_at
--   (`clients rotate-secret --overlap`), so a rotation needs no downtime.
-- - client_sources: every address a controller minted from, so that a mint
--   from an address never seen before stands out in the audit trail.
ALTER TABLE "clients" ADD COLUMN "allowed_sources" TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
ADD COLUMN "previous_secret_hash" TEXT,
ADD COLUMN "previous_secret_last4" TEXT,
ADD COLUMN "previous_secret_expires_at" TIMESTAMPTZ(3);

CREATE TABLE "client_sources" (
    "client_name" TEXT NOT NULL,
    "address" TEXT NOT NULL,
    "first_seen_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_seen_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "client_sources_pkey" PRIMARY KEY ("client_name", "address")
);

ALTER TABLE "client_sources" ADD CONSTRAINT "client_sources_client_name_fkey" FOREIGN KEY ("client_name") REFERENCES "clients"("name") ON DELETE CASCADE ON UPDATE CASCADE;
