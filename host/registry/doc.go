// Package registry serves the OCI distribution API natively for a plugin route that
// declares the oci-distribution protocol (abi.Route.Protocol), with the plugin's types in
// the roles the route names (container: blob, manifest, tag, push repository,
// distribution). No plugin is called to pull; pushing a manifest asks the plugin's
// content_from_upload export what the bytes are.
//
// Endpoints (under the route's prefix, /v2/):
//
//	GET        /v2/                                  200 {} (API version check)
//	GET        /v2/_catalog?n=&last=                 distributions' base paths, Link paging
//	GET        /v2/<name>/tags/list?n=&last=         tags of the served version, Link paging
//	GET, HEAD  /v2/<name>/manifests/<tag|digest>     stored bytes, Content-Type = media type
//	PUT        /v2/<name>/manifests/<tag|digest>     push (<= 4 MiB); 201 once the version exists
//	DELETE     /v2/<name>/manifests/<tag|digest>     a tag, or a manifest with its tags; 202
//	GET, HEAD  /v2/<name>/blobs/<digest>             Range; on-demand blobs fetched from remotes
//	DELETE     /v2/<name>/blobs/<digest>             202
//	POST       /v2/<name>/blobs/uploads/             session (202), ?digest= monolithic (201),
//	                                                 ?mount=&from= cross-repository mount (201)
//	PATCH      /v2/<name>/blobs/uploads/<id>         streamed or chunked (Content-Range; 416)
//	PUT        /v2/<name>/blobs/uploads/<id>?digest= finish (201), digest checked
//	GET        /v2/<name>/blobs/uploads/<id>         204 with Range
//	DELETE     /v2/<name>/blobs/uploads/<id>         204
//	GET        /v2/<name>/referrers/<digest>         OCI 1.1 index, ?artifactType= filter
//
// Errors are OCI error bodies ({"errors":[{"code","message","detail"}]}).
//
// Names are distributions' base paths, as in Pulp: a name serves its distribution's
// repository's latest version (or pinned version), and for a push repository also what
// was pushed to it and no version holds yet (table registry_pending). Path parsing goes by
// the last endpoint segments since names contain slashes. Distributions, the served
// versions, manifests (with their bytes up to 256 KiB) and blob locations are cached in
// process and flushed by LISTEN on db.ChannelContentCache (and at once after this
// process's own writes), so a manifest GET by tag costs no query and no plugin call.
// Stored blobs are sent by the content app's ServeFile (http.ServeContent over storage,
// sendfile on the filesystem); on-demand ones share its downloads.
//
// Push: blob bytes stream into a file under the shared upload directory with sha256
// computed inline; sessions (size, hash state) are rows of registry_uploads, so any
// process can continue them; a finished, verified blob becomes an artifact and a blob unit
// pending in the repository, and a mismatch or an aborted body leaves nothing. The first
// push to a name creates a push repository and its distribution. A manifest push stores
// the bytes as an artifact, asks the plugin for the unit's fields and relations, checks
// every referenced blob and manifest is in the repository (MANIFEST_BLOB_UNKNOWN
// otherwise, nothing kept), then adds manifest, references and tag in a new version made
// by the core.modify task under the repository's exclusive lock, run in the request when
// the lock is free: concurrent pushes are serialized like every other version change.
// Deletes make new versions the same way.
//
// Access decisions go through the Access interface; OpenAccess, the only implementation
// until token authentication exists, allows everything.
package registry
