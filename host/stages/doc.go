// Package stages runs a sync: the plugin's first stage emits declarative
// content, and the host's stages, connected by bounded channels, do the rest
// natively, in Pulp's order:
//
//	plugin emit ─► query existing artifacts (batched)
//	            ─► download missing artifacts (download_concurrency workers)
//	               and store them without a per-file flush
//	            ─► restore emit order
//	            ─► make the batch's downloads durable with one storage Sync,
//	               then record them with one insert (batched)
//	            ─► save content, content artifacts, remote artifacts and
//	               relations, and associate with the new version (batched)
//
// No artifact row names a file before the file is durable, so a crash at
// any point leaves at worst stored files without rows; a re-run stores them
// again, durably. A failed run records what it downloaded, as orphans that
// spare a re-run the downloads.
//
// Memory stays flat whatever the repository size: every channel is bounded,
// so a plugin's content_emit call blocks while the stages are busy. Mirror
// syncs mark the whole latest content removed before the stream starts and
// un-remove what arrives, so no set of seen units is kept in memory. Any
// stage error cancels the others; the task then fails and its incomplete
// version is discarded.
package stages
