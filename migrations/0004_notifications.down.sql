DROP TABLE IF EXISTS deliveries;
DROP TABLE IF EXISTS notifications;
