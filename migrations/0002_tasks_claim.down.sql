DROP INDEX IF EXISTS tasks_waiting_claim_order;
ALTER INDEX tasks_incomplete_excl RESET (fastupdate);
ALTER INDEX tasks_incomplete_shared RESET (fastupdate);
