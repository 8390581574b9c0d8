package download

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// A plugin's fetch: HEAD goes out as HEAD, and with AnyStatus a final non-2xx
// answer is a result carrying its status and headers, after 5xx retries.
func TestMethodAndAnyStatus(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("X-Method", r.Method)
		switch r.URL.Path {
		case "/missing":
			w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"errors":[]}`))
		case "/busy":
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.Header().Set("Docker-Content-Digest", "sha256:abc")
			w.Write([]byte("manifest body"))
		}
	}))
	defer srv.Close()
	two := 2
	d := newD(t, Config{MaxRetries: &two})
	ctx := context.Background()

	var buf bytes.Buffer
	res, err := d.Fetch(ctx, Request{URL: srv.URL + "/m", Method: http.MethodHead}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Header.Get("X-Method"); got != http.MethodHead || buf.Len() != 0 || res.Status != 200 {
		t.Fatalf("HEAD: server saw %q, %d body bytes, status %d", got, buf.Len(), res.Status)
	}
	if res.Header.Get("Docker-Content-Digest") != "sha256:abc" {
		t.Fatalf("HEAD headers: %v", res.Header)
	}

	res, err = d.Fetch(ctx, Request{URL: srv.URL + "/missing", AnyStatus: true}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 404 || res.Header.Get("Docker-Distribution-Api-Version") != "registry/2.0" || buf.Len() != 0 {
		t.Fatalf("404 with AnyStatus: status %d, header %v, %d body bytes", res.Status, res.Header, buf.Len())
	}
	var he *HTTPError
	if _, err := d.Fetch(ctx, Request{URL: srv.URL + "/missing"}, &buf); !errors.As(err, &he) || he.Status != 404 {
		t.Fatalf("404 without AnyStatus: %v, want an HTTPError", err)
	}

	calls.Store(0)
	res, err = d.Fetch(ctx, Request{URL: srv.URL + "/busy", AnyStatus: true}, &buf)
	if err != nil || res.Status != 503 {
		t.Fatalf("503 with AnyStatus: %v, status %d", err, res.Status)
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("503 with AnyStatus: %d requests, want 3 (retried first)", n)
	}
}
