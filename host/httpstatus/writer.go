// Package httpstatus has the response writer that middleware wraps around a
// handler to learn the status it answered, without hiding what the
// underlying writer can do: io.ReaderFrom (sendfile for the content app and
// the registry), Flush, and http.ResponseController through Unwrap.
package httpstatus

import (
	"io"
	"net/http"
)

// Writer remembers the first status written through it.
type Writer struct {
	http.ResponseWriter
	status int
}

// Status is the status answered: 200 when the handler wrote nothing, as
// net/http then sends.
func (w *Writer) Status() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// WriteHeader records code (informational 1xx codes are not the answer).
func (w *Writer) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *Writer) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ReadFrom lets io.Copy reach the connection's sendfile path.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
}

// Flush keeps streaming responses streaming.
func (w *Writer) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *Writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }
