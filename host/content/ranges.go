package content

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// byteRange is bytes start..start+length-1 of a file.
type byteRange struct{ start, length int64 }

var errRange = errors.New("invalid or unsatisfiable range")

// parseRanges reads a Range header against a file of size bytes as
// net/http's ServeContent does: a malformed header, or one with no range
// starting inside the file, is errRange (416); ranges are clipped to the
// file.
func parseRanges(h string, size int64) ([]byteRange, error) {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		return nil, errRange
	}
	var out []byteRange
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		first, last, ok := strings.Cut(part, "-")
		if !ok {
			return nil, errRange
		}
		first, last = strings.TrimSpace(first), strings.TrimSpace(last)
		var r byteRange
		if first == "" {
			// Suffix range: the last n bytes.
			n, err := strconv.ParseInt(last, 10, 64)
			if err != nil || n < 0 || last == "" || last[0] == '-' || last[0] == '+' {
				return nil, errRange
			}
			n = min(n, size)
			if n == 0 { // nothing to send, also for an empty file (not "bytes 0--1/0")
				continue
			}
			r = byteRange{start: size - n, length: n}
		} else {
			s, err := strconv.ParseInt(first, 10, 64)
			if err != nil || s < 0 || first[0] == '+' {
				return nil, errRange
			}
			if s >= size {
				continue
			}
			r.start = s
			if last == "" {
				r.length = size - s
			} else {
				e, err := strconv.ParseInt(last, 10, 64)
				if err != nil || e < s || last[0] == '+' || last[0] == '-' {
					return nil, errRange
				}
				r.length = min(e, size-1) - s + 1
			}
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, errRange
	}
	return out, nil
}

// noneMatch reports whether If-None-Match names etag (weakly compared), so
// the answer is 304.
func noneMatch(r *http.Request, etag string) bool {
	v := r.Header.Get("If-None-Match")
	if v == "" || etag == "" {
		return false
	}
	for tag := range strings.SplitSeq(v, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" || strings.TrimPrefix(tag, "W/") == etag {
			return true
		}
	}
	return false
}

// ifRangeAllows reports whether a Range header may be honoured: If-Range is
// absent or names the current entity tag (dates never match: no
// Last-Modified is known for content not downloaded yet).
func ifRangeAllows(r *http.Request, etag string) bool {
	v := r.Header.Get("If-Range")
	return v == "" || etag != "" && v == etag
}
