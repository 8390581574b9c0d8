-- The W3C traceparent of the request that dispatched a task, so that the
-- task's run continues the request's trace in whichever process claims it
-- ('' when tracing was off).
ALTER TABLE tasks ADD COLUMN trace_parent text NOT NULL DEFAULT '';
