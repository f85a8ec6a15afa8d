-- AWS claims per client: which build claims become session tags (and which of
-- those are transitive), and the source identity template.
ALTER TABLE "clients" ADD COLUMN "session_tag_claims" TEXT[] DEFAULT ARRAY[]::TEXT[],
ADD COLUMN "transitive_tag_keys" TEXT[] DEFAULT ARRAY[]::TEXT[],
ADD COLUMN "source_identity" TEXT;
