// Package tasks runs Pulpo's background work on PostgreSQL, in Pulp's model.
//
// A task is dispatched with exclusive and shared resources (hrefs). Tasks that
// conflict on a resource run in dispatch order, one at a time; shared holders
// of a resource may overlap. Any number of processes, each a [Node], claim
// runnable tasks with SELECT ... FOR UPDATE SKIP LOCKED; NOTIFY wakes idle
// workers and carries cancellation, with a slow poll as a safety net.
//
// Every node heartbeats its app_status rows. A node whose heartbeat expires is
// presumed dead: another node fails its running tasks ("Worker has gone
// missing."), discards the repository versions they were building, and their
// resources become free.
//
// Task code is a [Func] registered by name in a [Registry] when the server is
// wired; it receives a [*Task] for its arguments, progress reports and the
// resources it creates, and a context canceled when the task is canceled.
package tasks
