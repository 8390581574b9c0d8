package tracing

import (
	"net/http"

	"github.com/pulpo/pulpo/host/httpstatus"
)

// Handler gives every request next serves a server span, continuing the
// request's W3C traceparent header when it has one. The span is named by the
// method until a router names it by its route (SpanFrom(ctx).SetName); a 5xx
// answer marks it failed. With t nil it returns next.
func (t *Tracer) Handler(next http.Handler) http.Handler {
	if t == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := t.StartRoot(r.Context(), r.Header.Get("traceparent"), r.Method, Server,
			String("http.request.method", r.Method), String("url.path", r.URL.Path))
		if span == nil {
			next.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		sw := &httpstatus.Writer{ResponseWriter: w}
		defer func() {
			code := sw.Status()
			span.SetAttrs(Int("http.response.status_code", int64(code)))
			if code >= 500 {
				span.Fail(http.StatusText(code))
			}
			span.End(nil)
		}()
		next.ServeHTTP(sw, r.WithContext(ctx))
	})
}
