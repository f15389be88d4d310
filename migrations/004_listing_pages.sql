-- The digest of each page of the last committed listing. A page that comes back
-- byte for byte the same holds the same users in the same state as when that
-- sync applied it, so the next sync only records its ids as seen.
CREATE TABLE listing_pages (
  connector_id  bigint NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
  per_page      integer NOT NULL,
  page          integer NOT NULL,
  digest        text NOT NULL,
  PRIMARY KEY (connector_id, per_page, page)
);

-- The run that wrote those pages and how many users were present after it. The
-- pages are trusted only while that run is still the connector's latest
-- committed one and the count still holds, so a write by anything else (an
-- operator's DELETE, another build's sync) sends the next sync back to
-- checking every user.
ALTER TABLE connectors ADD COLUMN listing_run_id bigint, ADD COLUMN listing_users_present integer;
