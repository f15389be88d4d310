-- A digest of the user object's JSON as Tines last sent it. A sync compares
-- it per page to find the users that changed, and ships only those rows to
-- the database; an unchanged tenant costs one small query per page.
ALTER TABLE tines_users ADD COLUMN raw_hash text;
