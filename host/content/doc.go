// Package content is the content app: it serves distributions under
// /pulp/content/ from the same process and HTTP server as the REST API.
//
// A request path is matched against every distribution's base_path (the
// longest one at a segment boundary wins; all distributions are held in
// memory), checked against the distribution's content guard, and resolved to
// what the distribution serves: a publication (its published artifacts and,
// with pass-through, every content artifact of its version), or a repository
// version's content. Resolution is one SQL statement per path, cached in
// process and flushed by LISTEN on db.ChannelContentCache, on reconnect, and
// after a short TTL.
//
// Stored artifacts are sent with http.ServeContent over the storage Reader
// (sendfile for the filesystem driver), which answers HEAD, Range, ETag and
// conditional requests; or, with Deps.Redirect (content_redirect over S3
// storage), a GET is answered with a 302 to a short-lived presigned URL of
// the object store, after the guard admitted it. A content artifact without
// an artifact (on_demand or streamed remotes) is fetched from its remote
// artifacts by one download per artifact that every concurrent request
// reads while it grows (a "flight"), verified against the expected digests,
// and for on_demand saved as an artifact whatever the clients do. Bytes that
// fail verification after being sent end the connection
// (http.ErrAbortHandler), never a response.
package content
