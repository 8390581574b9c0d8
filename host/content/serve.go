package content

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/pulpo/pulpo/host/storage"
)

// maxRanges caps the ranges of one request, as nginx's max_ranges: more are
// ignored and the whole file is sent, so a Range header of thousands of tiny
// ranges cannot turn into a multipart body many times its size.
const maxRanges = 64

// serveStored sends a stored artifact with http.ServeContent: Range (one or
// many), HEAD, Last-Modified, If-* and 304/206/416 come from it, and the fs
// driver's Reader lets it use sendfile.
func (h *Handler) serveStored(w http.ResponseWriter, r *http.Request, key, sha256, name string) {
	if h.redirect != nil && r.Method == http.MethodGet {
		h.redirectStored(w, r, key, name)
		return
	}
	rd, err := h.storage.Open(r.Context(), key)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			h.log.ErrorContext(r.Context(), "artifact file missing from storage", "key", key, "path", r.URL.Path)
		}
		h.fail(w, r, err)
		return
	}
	defer rd.Close()
	hdr := w.Header()
	hdr.Set("Content-Type", contentType(name))
	hdr.Set("ETag", `"`+sha256+`"`)
	limitRanges(r)
	http.ServeContent(w, r, "", rd.ModTime(), rd)
}

// redirectStored answers with a 302 to the object store's presigned URL of
// key, as Pulp's content app does for cloud storage, naming the file in
// Content-Disposition so a client saves it under its name, not the key's.
// The URL expires, so the redirect itself must not be cached for long.
func (h *Handler) redirectStored(w http.ResponseWriter, r *http.Request, key, name string) {
	disposition := mime.FormatMediaType("attachment", map[string]string{"filename": path.Base(name)})
	if disposition == "" {
		disposition = "attachment"
	}
	loc, err := h.redirect(r.Context(), key, contentType(name), disposition)
	if err != nil {
		h.fail(w, r, fmt.Errorf("presign %s: %w", key, err))
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	http.Redirect(w, r, loc, http.StatusFound)
}

// limitRanges drops a Range header naming more than maxRanges ranges.
func limitRanges(r *http.Request) {
	if v := r.Header.Get("Range"); v != "" && strings.Count(v, ",") >= maxRanges {
		r.Header.Del("Range")
	}
}

// contentType is the MIME type of a file name's extension; unknown ones are
// application/octet-stream rather than sniffed, which would cost a read.
func contentType(name string) string {
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}
