DROP TABLE IF EXISTS recipients;
DROP TABLE IF EXISTS distribution_stats;
DROP TABLE IF EXISTS distributions;
DROP TABLE IF EXISTS surveys;
