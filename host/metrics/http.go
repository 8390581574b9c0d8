package metrics

import (
	"net/http"
	"time"

	"github.com/pulpo/pulpo/host/httpstatus"
)

// Instrument counts and times the requests h serves under one route label,
// a fixed family name such as "content" or "registry". The wrapped writer
// keeps io.ReaderFrom, so the content app still sends files with sendfile.
func (m *Metrics) Instrument(route string, h http.Handler) http.Handler {
	if m == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &httpstatus.Writer{ResponseWriter: w}
		defer func() { m.ObserveRequest(route, r.Method, sw.Status(), time.Since(start)) }()
		h.ServeHTTP(sw, r)
	})
}
