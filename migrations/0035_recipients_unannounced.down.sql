ALTER TABLE recipients DROP COLUMN unannounced;
