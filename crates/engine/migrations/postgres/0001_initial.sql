-- The schema as of the second release (schema_version 2). Every statement creates only
-- what is missing, so a database made by that release adopts this migration as it is.
CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY, idp TEXT NOT NULL DEFAULT 'entra', state TEXT NOT NULL,
    user_id TEXT NOT NULL, user_label TEXT NOT NULL, pin_contacts TEXT NOT NULL,
    create_body TEXT NOT NULL, shipment_id TEXT UNIQUE, fulfiller_state BIGINT,
    fulfiller_message TEXT, serial TEXT, firmware TEXT, tracking TEXT, last_error TEXT,
    created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS requests_state ON requests (state);
CREATE INDEX IF NOT EXISTS requests_idp ON requests (idp);
CREATE TABLE IF NOT EXISTS request_history (
    seq BIGSERIAL PRIMARY KEY, request_id TEXT NOT NULL, at BIGINT NOT NULL,
    state TEXT NOT NULL, note TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, request_id TEXT NOT NULL UNIQUE, run_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0, locked_until BIGINT, last_error TEXT);
CREATE TABLE IF NOT EXISTS sealed_secrets (
    request_id TEXT NOT NULL, purpose TEXT NOT NULL, sealed BYTEA NOT NULL,
    PRIMARY KEY (request_id, purpose));
CREATE TABLE IF NOT EXISTS idempotency_keys (
    client TEXT NOT NULL, key TEXT NOT NULL, request_id TEXT NOT NULL,
    created_at BIGINT NOT NULL, PRIMARY KEY (client, key));
CREATE TABLE IF NOT EXISTS okta_requests (
    request_id TEXT PRIMARY KEY, okta_user_id TEXT NOT NULL, login TEXT NOT NULL,
    group_id TEXT, product_id BIGINT NOT NULL, inventory_product_id BIGINT NOT NULL,
    customization_id TEXT NOT NULL, source TEXT NOT NULL, enrollment_ids TEXT,
    activated BIGINT NOT NULL DEFAULT 0, restart BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS okta_requests_user ON okta_requests (okta_user_id);
CREATE TABLE IF NOT EXISTS okta_open_users (
    okta_user_id TEXT PRIMARY KEY, request_id TEXT NOT NULL, locked_at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS okta_events (
    event_id TEXT PRIMARY KEY, received_at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS console_sessions (
    id_hash TEXT PRIMARY KEY, user_name TEXT NOT NULL, method TEXT NOT NULL,
    created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS console_signin_failures (
    key_hash TEXT NOT NULL, attempt TEXT NOT NULL, at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS console_signin_failures_key
    ON console_signin_failures (key_hash, at);
CREATE TABLE IF NOT EXISTS pin_holds (
    request_id TEXT PRIMARY KEY, delivered_at BIGINT NOT NULL, held_until BIGINT,
    purged_at BIGINT, purge_reason TEXT);
