-- Signing key lifecycle: pending -> active -> retired -> removed, each step
-- recorded in signing_key_events. A removed key keeps its row (and public
-- part, for the record) but loses its private part.

-- AlterTable
ALTER TABLE "signing_keys" ADD COLUMN "activate_after" TIMESTAMPTZ(3),
ADD COLUMN "retired_at" TIMESTAMPTZ(3),
ADD COLUMN "removed_at" TIMESTAMPTZ(3),
ALTER COLUMN "private_key_encrypted" DROP NOT NULL;

-- At most one key signs at any moment, whatever the replicas do.
CREATE UNIQUE INDEX "signing_keys_one_active" ON "signing_keys"("status") WHERE "status" = 'active';

-- CreateTable
CREATE TABLE "signing_key_events" (
    "id" BIGSERIAL NOT NULL,
    "kid" TEXT NOT NULL,
    "from_status" TEXT,
    "to_status" TEXT NOT NULL,
    "actor" TEXT NOT NULL,
    "reason" TEXT,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "signing_key_events_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "signing_key_events_kid_idx" ON "signing_key_events"("kid");

-- AddForeignKey
ALTER TABLE "signing_key_events" ADD CONSTRAINT "signing_key_events_kid_fkey" FOREIGN KEY ("kid") REFERENCES "signing_keys"("kid") ON DELETE RESTRICT ON UPDATE CASCADE;

-- Keys made before this migration get their first history line.
INSERT INTO "signing_key_events" ("kid", "from_status", "to_status", "actor", "reason", "at")
SELECT "kid", NULL, "status", 'migration', 'created before key history was recorded', "created_at" FROM "signing_keys";
