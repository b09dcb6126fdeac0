DROP INDEX IF EXISTS recipients_finished_idx;
