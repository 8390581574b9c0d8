package liveroute

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/pulpo/pulpo/abi"
)

// FuzzRouteResponse sends arbitrary handle_route answers, as a plugin may give them,
// through the handler: it never panics (net/http panics on a status outside 100-999),
// and the client gets a final status between 200 and 599: the plugin's when valid, else
// a 500 (the plugin is at fault).
func FuzzRouteResponse(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("..", "..", "abi", "testdata", "route_response.json")); err == nil {
		f.Add(b, "GET")
	}
	for _, s := range []string{
		`{"status":200,"headers":{"content-type":"text/plain"},"body":"aGVsbG8="}`,
		`{"status":0}`, `{"status":42}`, `{"status":1000}`, `{"status":-1}`, `{"status":103,"body":"eA=="}`,
		`{"status":204,"body":"eA=="}`, `{"status":599}`, `{"status":600}`, `{"status":404,"headers":{"Content-Length":"99"},"body":"eA=="}`,
		`{"status":200,"headers":{"x-a":"b\r\nSet-Cookie: x=y"}}`, `{"status":301,"headers":{"location":"/elsewhere"}}`,
	} {
		f.Add([]byte(s), "GET")
	}
	f.Add([]byte(`{"status":500,"body":"eA=="}`), "HEAD")
	f.Fuzz(func(t *testing.T, data []byte, method string) {
		var resp abi.RouteResponse
		if json.Unmarshal(data, &resp) != nil || resp.ServeArtifact != "" { // artifacts need a database
			return
		}
		if method != http.MethodHead {
			method = http.MethodGet
		}
		h := &Handler{Plugin: &fakeRouter{resp: resp}}
		rec := httptest.NewRecorder()
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("answer %s: handler panicked: %v", data, p)
				}
			}()
			h.ServeHTTP(rec, httptest.NewRequest(method, "/v2/", nil))
		}()
		if rec.Code < 200 || rec.Code > 599 {
			t.Fatalf("answer %s: client got status %d", data, rec.Code)
		}
		valid := resp.Status == 0 || resp.Status >= 200 && resp.Status <= 599
		if !valid && rec.Code != http.StatusInternalServerError {
			t.Fatalf("answer %s with status %d: client got %d, want 500", data, resp.Status, rec.Code)
		}
	})
}
