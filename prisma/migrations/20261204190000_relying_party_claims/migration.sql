-- Claims every relying party can use (issue 19):
-- - claim_types: 'string' writes build_number, restarted_from and replayed as
--   JSON strings (Vault's bound_claims/claim_mappings and Kubernetes'
--   required claims match strings only); 'json' keeps numbers and booleans.
--   Existing clients keep 'json' (their trust policies and session tags were
--   written against it); clients registered from now on get 'string'. The
--   column is added with the old behaviour as its default, which fills the
--   existing rows, and the default then changes for new rows.
-- - sub_template: "{jenkins_instance}:{job|sha256}"-style template for sub;
--   NULL keeps the key:value form of sub_claims.
ALTER TABLE "clients" ADD COLUMN "claim_types" TEXT NOT NULL DEFAULT 'json',
ADD COLUMN "sub_template" TEXT;
ALTER TABLE "clients" ALTER COLUMN "claim_types" SET DEFAULT 'string';
ALTER TABLE "clients" ADD CONSTRAINT "clients_claim_types_check" CHECK ("claim_types" IN ('string', 'json'));
