ALTER TABLE integrations DROP COLUMN notification_time_zone, DROP COLUMN notification_language;
DROP TABLE user_settings;
