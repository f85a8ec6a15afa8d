-- CreateTable
CREATE TABLE "clients" (
    "name" TEXT NOT NULL,
    "jenkins_url" TEXT NOT NULL,
    "audiences" TEXT[],
    "sub_claims" TEXT[],
    "max_request_token_ttl" INTEGER NOT NULL,
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "secret_hash" TEXT NOT NULL,
    "secret_prefix" TEXT NOT NULL,
    "secret_last4" TEXT NOT NULL,
    "secret_rotated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "clients_pkey" PRIMARY KEY ("name")
);

-- CreateTable
CREATE TABLE "signing_keys" (
    "kid" TEXT NOT NULL,
    "alg" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "public_jwk" JSONB NOT NULL,
    "private_key_encrypted" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "activated_at" TIMESTAMPTZ(3),

    CONSTRAINT "signing_keys_pkey" PRIMARY KEY ("kid")
);

-- CreateTable
CREATE TABLE "request_tokens" (
    "id" UUID NOT NULL,
    "token_hash" TEXT NOT NULL,
    "client_name" TEXT NOT NULL,
    "job" TEXT NOT NULL,
    "build_number" INTEGER NOT NULL,
    "claims" JSONB NOT NULL,
    "audiences" TEXT[],
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "revoked_at" TIMESTAMPTZ(3),
    "revoked_by" TEXT,

    CONSTRAINT "request_tokens_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "audit_events" (
    "id" BIGSERIAL NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "event" TEXT NOT NULL,
    "client_name" TEXT,
    "job" TEXT,
    "build_number" INTEGER,
    "audience" TEXT,
    "jti" TEXT,
    "kid" TEXT,
    "request_token_id" UUID,
    "remote_addr" TEXT,
    "detail" JSONB,

    CONSTRAINT "audit_events_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "oidc_models" (
    "id" VARCHAR(255) NOT NULL,
    "kind" VARCHAR(64) NOT NULL,
    "payload" JSONB NOT NULL,
    "expires_at" TIMESTAMPTZ(3),

    CONSTRAINT "oidc_models_pkey" PRIMARY KEY ("kind","id")
);

-- CreateIndex
CREATE UNIQUE INDEX "request_tokens_token_hash_key" ON "request_tokens"("token_hash");

-- CreateIndex
CREATE INDEX "request_tokens_client_name_job_idx" ON "request_tokens"("client_name", "job");

-- CreateIndex
CREATE INDEX "request_tokens_expires_at_idx" ON "request_tokens"("expires_at");

-- CreateIndex
CREATE INDEX "audit_events_at_idx" ON "audit_events"("at");

-- CreateIndex
CREATE INDEX "audit_events_client_name_at_idx" ON "audit_events"("client_name", "at");

-- AddForeignKey
ALTER TABLE "request_tokens" ADD CONSTRAINT "request_tokens_client_name_fkey" FOREIGN KEY ("client_name") REFERENCES "clients"("name") ON DELETE CASCADE ON UPDATE CASCADE;
