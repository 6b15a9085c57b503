-- Retention (`retention_days`): when the personal data of a finished request was
-- removed (NULL: not yet). The request, its states, timestamps, shipment id and audit
-- trail stay.
ALTER TABLE requests ADD COLUMN personal_data_removed_at BIGINT;
