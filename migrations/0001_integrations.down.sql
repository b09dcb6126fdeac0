DROP TABLE IF EXISTS brand_admins;
DROP TABLE IF EXISTS integrations;
