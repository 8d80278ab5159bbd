-- Task ids are compared case-insensitively (issue 15): two ids that differ only in case are
-- one id, so results folders never collide on case-insensitive file systems. New ids are
-- stored lower case; this index serves the case-insensitive "is this id taken?" lookup
-- (not UNIQUE: a database may already hold ids that differ only in case).
CREATE INDEX tasks_id_lower ON tasks (lower(id));
