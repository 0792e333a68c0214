-- One database per service that owns data (ARCHITECTURE.md §1, §4): no service reads another's.
-- Run once by the postgres image on an empty volume (/docker-entrypoint-initdb.d) as
-- POSTGRES_USER, who therefore owns them; each service's container migrates its own on start.
CREATE DATABASE citypair_identity;
CREATE DATABASE citypair_profiles;
CREATE DATABASE citypair_matching;
CREATE DATABASE citypair_pilot_zones;
