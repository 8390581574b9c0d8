package content

import (
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"
)

// maxPathLen bounds a request's relative path; no stored path is longer.
const maxPathLen = 4096

var errBadPath = errors.New("invalid path")

// relativePath returns the path under prefix that r asks for, refusing
// anything that could name something other than what it spells: dot
// segments, empty segments, backslashes, NUL and other control characters,
// invalid UTF-8 and escaped slashes (which decode into extra segments).
// A trailing slash is kept: it asks for a directory.
func relativePath(r *http.Request, prefix string) (string, error) {
	rel, ok := strings.CutPrefix(r.URL.Path, prefix)
	if !ok {
		return "", errBadPath
	}
	if raw := r.URL.RawPath; raw != "" && containsFold(raw, "%2f", "%5c", "%00") {
		return "", errBadPath
	}
	if len(rel) > maxPathLen || !utf8.ValidString(rel) {
		return "", errBadPath
	}
	start := 0
	for i := 0; i <= len(rel); i++ {
		if i < len(rel) {
			c := rel[i]
			if c < 0x20 || c == 0x7f || c == '\\' {
				return "", errBadPath
			}
			if c != '/' {
				continue
			}
		} else if start == i {
			break // "" or a trailing slash
		}
		switch rel[start:i] {
		case "", ".", "..":
			return "", errBadPath
		}
		start = i + 1
	}
	return rel, nil
}

// containsFold reports whether s contains any of the lower-case ASCII needles,
// ignoring case.
func containsFold(s string, needles ...string) bool {
	ls := strings.ToLower(s)
	for _, n := range needles {
		if strings.Contains(ls, n) {
			return true
		}
	}
	return false
}
