package content

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/download"
)

// rangeLookahead: a range starting at most this far beyond what the
// download has written is served from the download rather than by asking
// the remote for the range.
const rangeLookahead = 1 << 20

// serveRemote serves a content artifact that has no artifact yet (on_demand
// or streamed). HEAD and conditional requests are answered from what the
// remote artifact records, without a download.
func (h *Handler) serveRemote(w http.ResponseWriter, r *http.Request, f db.ContentFile, name string) {
	ca := *f.ContentArtifactID // published metadata always has its artifact
	hdr := w.Header()
	hdr.Set("Content-Type", contentType(name))
	hdr.Set("Accept-Ranges", "bytes")
	etag := ""
	if f.RemoteSHA256 != nil {
		etag = `"` + *f.RemoteSHA256 + `"`
		hdr.Set("ETag", etag)
	}
	if noneMatch(r, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	size := int64(-1)
	if f.RemoteSize != nil {
		size = *f.RemoteSize
	}
	if r.Method == http.MethodHead {
		if size >= 0 {
			hdr.Set("Content-Length", strconv.FormatInt(size, 10))
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	limitRanges(r)
	if rh := r.Header.Get("Range"); rh != "" && ifRangeAllows(r, etag) {
		if size < 0 {
			h.serveDownloaded(w, r, ca, name)
			return
		}
		ranges, err := parseRanges(rh, size)
		switch {
		case err != nil:
			hdr.Set("Content-Range", fmt.Sprintf("bytes */%d", size))
			httpError(w, http.StatusRequestedRangeNotSatisfiable, "Range not satisfiable.")
		case len(ranges) == 1:
			h.serveRemoteRange(w, r, ca, ranges[0], size, name)
		default:
			h.serveDownloaded(w, r, ca, name)
		}
		return
	}
	h.streamFlight(w, r, ca, name)
}

// streamFlight sends the whole file while it downloads.
func (h *Handler) streamFlight(w http.ResponseWriter, r *http.Request, ca uuid.UUID, name string) {
	ctx := r.Context()
	fl := h.fetcher.join(ca)
	defer fl.release()
	s, err := fl.waitFor(ctx, started)
	if err != nil {
		return // the client left
	}
	if s.stored != nil && s.written == 0 {
		h.serveStored(w, r, s.stored.File, s.stored.SHA256, name)
		return
	}
	if s.failed() {
		h.fetchFailed(w, r, s.err)
		return
	}
	hdr := w.Header()
	if s.sha256 != "" {
		hdr.Set("ETag", `"`+s.sha256+`"`)
	}
	if s.size >= 0 {
		hdr.Set("Content-Length", strconv.FormatInt(s.size, 10))
	}
	w.WriteHeader(http.StatusOK)
	if err := fl.copyTo(ctx, w, 0, s.size); err != nil {
		h.abort(r, err)
	}
}

// serveDownloaded waits for the whole download and lets ServeContent answer
// what streaming cannot: several ranges, or a range of unknown size.
func (h *Handler) serveDownloaded(w http.ResponseWriter, r *http.Request, ca uuid.UUID, name string) {
	fl := h.fetcher.join(ca)
	defer fl.release()
	s, err := fl.waitFor(r.Context(), finished)
	switch {
	case err != nil:
	case s.stored != nil:
		h.serveStored(w, r, s.stored.File, s.stored.SHA256, name)
	case s.failed():
		h.fetchFailed(w, r, s.err)
	default: // verified, not saved (streamed)
		if s.sha256 != "" {
			w.Header().Set("ETag", `"`+s.sha256+`"`)
		}
		http.ServeContent(w, r, "", time.Time{}, io.NewSectionReader(fl.file, 0, s.written))
	}
}

// serveRemoteRange answers one range of a missing file without downloading
// more than the range when the download has not got there yet: the remote
// is asked for the range. For on_demand a full download runs alongside, so
// the artifact is saved all the same (Pulp saves nothing: pulpcore #3060).
func (h *Handler) serveRemoteRange(w http.ResponseWriter, r *http.Request, ca uuid.UUID, rg byteRange, size int64, name string) {
	ctx := r.Context()
	srcs, err := h.fetcher.sources(ctx, ca)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if len(srcs) == 0 {
		h.fetchFailed(w, r, errNoSource)
		return
	}
	var fl *flight
	if srcs[0].Remote.Policy != "streamed" {
		fl = h.fetcher.join(ca)
		defer fl.release()
		if s := fl.state(); s.written+rangeLookahead > rg.start {
			h.rangeFromFlight(w, r, fl, rg, size, name)
			return
		}
	}
	if h.rangeFromRemote(w, r, srcs, rg, size) {
		return
	}
	if fl != nil {
		h.rangeFromFlight(w, r, fl, rg, size, name)
		return
	}
	h.fetchFailed(w, r, errors.New("no remote answered the range"))
}

func rangeHeaders(w http.ResponseWriter, rg byteRange, size int64) {
	hdr := w.Header()
	hdr.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", rg.start, rg.start+rg.length-1, size))
	hdr.Set("Content-Length", strconv.FormatInt(rg.length, 10))
	w.WriteHeader(http.StatusPartialContent)
}

// rangeFromFlight sends a range out of the download once it gets there.
func (h *Handler) rangeFromFlight(w http.ResponseWriter, r *http.Request, fl *flight, rg byteRange, size int64, name string) {
	ctx := r.Context()
	s, err := fl.waitFor(ctx, reaches(rg.start))
	switch {
	case err != nil:
		return
	case s.stored != nil && s.written <= rg.start:
		h.serveStored(w, r, s.stored.File, s.stored.SHA256, name)
		return
	case s.failed():
		h.fetchFailed(w, r, s.err)
		return
	}
	rangeHeaders(w, rg, size)
	if err := fl.copyTo(ctx, w, rg.start, rg.start+rg.length); err != nil {
		h.abort(r, err)
	}
}

// rangeFromRemote asks the sources for the range in turn, streaming the
// first answer. It reports whether a response was sent (or the client
// left); a source failing after its first byte ends the connection.
func (h *Handler) rangeFromRemote(w http.ResponseWriter, r *http.Request, srcs []db.RemoteSource, rg byteRange, size int64) bool {
	ctx := r.Context()
	lw := &lazyWriter{w: w, start: func() { rangeHeaders(w, rg, size) }}
	for _, src := range srcs {
		dl, err := h.fetcher.dls.get(src.Remote)
		if err != nil {
			h.log.WarnContext(ctx, "range fetch", "err", err)
			continue
		}
		_, err = dl.Fetch(ctx, download.Request{URL: src.URL, Range: &[2]int64{rg.start, rg.start + rg.length - 1},
			Expected: download.Expect{Size: rg.length}}, lw)
		if err == nil {
			return true
		}
		if lw.started || ctx.Err() != nil {
			h.abort(r, err)
		}
		h.log.DebugContext(ctx, "range fetch failed, trying the next source", "url", src.URL, "err", err)
	}
	return false
}

// lazyWriter sends the response headers with the first byte, so a source
// failing before it can still be replaced by another.
type lazyWriter struct {
	w       io.Writer
	start   func()
	started bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.start()
	}
	return l.w.Write(p)
}

// fetchFailed answers a missing file no remote delivered: 404, as Pulp does
// when every remote artifact failed.
func (h *Handler) fetchFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && h.base.Err() != nil {
		httpError(w, http.StatusServiceUnavailable, "Shutting down.")
		return
	}
	h.log.WarnContext(r.Context(), "on-demand content unavailable", "path", r.URL.Path, "err", err)
	httpError(w, http.StatusNotFound, fmt.Sprintf("%s could not be fetched from any remote.", r.URL.Path))
}

// abort ends a response whose status is sent but whose body cannot be
// completed: the connection is cut, so the client sees a broken transfer
// and never a short or wrong file.
func (h *Handler) abort(r *http.Request, err error) {
	if r.Context().Err() == nil {
		h.log.WarnContext(r.Context(), "content response aborted", "path", r.URL.Path, "err", err)
	}
	panic(http.ErrAbortHandler)
}
