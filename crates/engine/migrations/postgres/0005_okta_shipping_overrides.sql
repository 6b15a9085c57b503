-- Okta mode: recipient and address fields a CSV batch row gave (a JSON object keyed by
-- the fulfiller's field names, e.g. {"street_line1": "..."}), applied over the Okta
-- profile and the HR file when the order is composed. NULL: none. Personal data:
-- retention clears it.
ALTER TABLE okta_requests ADD COLUMN shipping_overrides TEXT;
