-- Credential requests (API v2, docs/credential-requests.md): one person's order of
-- several keys, each with credentials at Entra, Okta or both. Each key is a request of
-- its own (its PIN, its audit trail; its own shipment unless keys share one), made
-- under the idempotency key ('credential-request', '<id>#<position>'): a repeated or
-- resumed order never orders a key twice. A key's request_id is NULL until its request
-- is recorded; cancelled = 1: the order was deleted before the key was ordered (it is
-- never ordered then);
-- shipment_lead: the request that orders the shipment the key rides in, when keys share
-- a shipment (fulfiller_keys_per_shipment > 1).
CREATE TABLE credential_requests (
    id TEXT PRIMARY KEY, entra_user TEXT, okta_user TEXT, created_at INTEGER NOT NULL);
CREATE TABLE credential_request_keys (
    credential_request_id TEXT NOT NULL, position INTEGER NOT NULL, label TEXT NOT NULL,
    credentials TEXT NOT NULL, request_id TEXT UNIQUE, last_error TEXT,
    cancelled INTEGER NOT NULL DEFAULT 0, shipment_lead TEXT,
    PRIMARY KEY (credential_request_id, position));
CREATE INDEX credential_request_keys_lead ON credential_request_keys (shipment_lead);
-- An Okta-mode key of a credential request: its slot in the user's open-request lock
-- (NULL: the user's one lock; a backup key takes its label's), the relying parties to
-- enroll for (JSON array; NULL: okta.rp_ids), and a credential registered at Entra too
-- (the Entra user's object id, and whether Graph has registered it).
ALTER TABLE okta_requests ADD COLUMN lock_slot TEXT;
ALTER TABLE okta_requests ADD COLUMN rp_ids TEXT;
ALTER TABLE okta_requests ADD COLUMN entra_user_id TEXT;
ALTER TABLE okta_requests ADD COLUMN entra_registered INTEGER NOT NULL DEFAULT 0;
