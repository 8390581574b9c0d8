package server

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/pulpo/pulpo/host/download"
)

// A plugin's fetch goes through Stream: HEAD is sent as HEAD, and a 404 is a
// status for the plugin (spec 8.1), not an upstream error.
func TestStreamMethodAndStatus(t *testing.T) {
	var methods []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		methods = append(methods, r.Method)
		if r.URL.Path == "/missing" {
			w.Header().Set("X-Why", "gone")
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Docker-Content-Digest", "sha256:00")
		w.Write([]byte("body"))
	}))
	defer srv.Close()
	d, err := download.New(download.Config{URL: srv.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	rd := remoteDownloader{d: d, conc: 1}
	var buf bytes.Buffer
	status, h, err := rd.Stream(t.Context(), http.MethodHead, srv.URL+"/m", map[string]string{"accept": "x/y"}, &buf)
	if err != nil || status != 200 || h.Get("Docker-Content-Digest") != "sha256:00" || buf.Len() != 0 {
		t.Fatalf("HEAD: %v, status %d, headers %v, %d body bytes", err, status, h, buf.Len())
	}
	status, h, err = rd.Stream(t.Context(), "", srv.URL+"/missing", nil, &buf)
	if err != nil || status != 404 || h.Get("X-Why") != "gone" {
		t.Fatalf("404: %v, status %d, headers %v", err, status, h)
	}
	if len(methods) != 2 || methods[0] != http.MethodHead || methods[1] != http.MethodGet {
		t.Fatalf("upstream saw %v, want HEAD then GET", methods)
	}
}
