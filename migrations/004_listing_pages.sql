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
