-- Nothing to undo: 0011's down migration drops the column this one filled.
SELECT 1;
