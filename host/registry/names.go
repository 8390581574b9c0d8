package registry

import (
	"net/http"
	"regexp"
	"strings"
)

// Grammar of the OCI distribution spec.
var (
	nameRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	// digestRE is any well-formed digest; supported algorithms are checked apart.
	digestRE = regexp.MustCompile(`^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)
	sha256RE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
	sha512RE = regexp.MustCompile(`^sha512:[a-f0-9]{128}$`)
)

// maxNameLength bounds a repository name (a base_path), as distribution does.
const maxNameLength = 255

// endpoint kinds of a /v2/<name>/... path.
const (
	kindManifest = iota + 1
	kindBlob
	kindUpload
	kindTags
	kindReferrers
)

// route is a parsed /v2/ request path.
type route struct {
	name string
	kind int
	ref  string // tag or digest, blob digest, upload id ("" for POST), referrers subject
}

// parsePath splits the path after /v2/ by its last endpoint segments, since names
// contain slashes: <name>/manifests/<ref>, <name>/blobs/<digest>, <name>/blobs/uploads/
// [<id>], <name>/tags/list, <name>/referrers/<digest>. ok is false for anything else.
func parsePath(rest string) (route, bool) {
	segs := strings.Split(rest, "/")
	n := len(segs)
	if n < 3 {
		return route{}, false
	}
	join := func(k int) string { return strings.Join(segs[:k], "/") }
	switch {
	case n >= 4 && segs[n-3] == "blobs" && segs[n-2] == "uploads":
		return route{name: join(n - 3), kind: kindUpload, ref: segs[n-1]}, true
	case segs[n-2] == "tags" && segs[n-1] == "list":
		return route{name: join(n - 2), kind: kindTags}, true
	case segs[n-2] == "manifests":
		return route{name: join(n - 2), kind: kindManifest, ref: segs[n-1]}, true
	case segs[n-2] == "blobs":
		return route{name: join(n - 2), kind: kindBlob, ref: segs[n-1]}, true
	case segs[n-2] == "referrers":
		return route{name: join(n - 2), kind: kindReferrers, ref: segs[n-1]}, true
	}
	return route{}, false
}

func checkName(name string) *apiError {
	if len(name) > maxNameLength || !nameRE.MatchString(name) {
		return errorf(http.StatusBadRequest, codeNameInvalid, "invalid repository name", map[string]string{"name": name})
	}
	return nil
}

// isDigest tells a digest reference from a tag.
func isDigest(ref string) bool { return strings.Contains(ref, ":") }

// checkDigest accepts the digests this registry can verify: sha256 and sha512.
func checkDigest(d string) *apiError {
	if !digestRE.MatchString(d) {
		return errorf(http.StatusBadRequest, codeDigestInvalid, "invalid digest", map[string]string{"digest": d})
	}
	if !sha256RE.MatchString(d) && !sha512RE.MatchString(d) {
		return errorf(http.StatusBadRequest, codeDigestInvalid, "unsupported digest algorithm or encoding (sha256 or sha512, lowercase hex)",
			map[string]string{"digest": d})
	}
	return nil
}

func checkTag(tag string) *apiError {
	if !tagRE.MatchString(tag) {
		return errorf(http.StatusBadRequest, codeTagInvalid, "invalid tag", map[string]string{"tag": tag})
	}
	return nil
}
