package liveroute

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/host/artifact"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/db/dbtest"
	"github.com/pulpo/pulpo/host/plugin"
	"github.com/pulpo/pulpo/host/storage/fs"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// fakeRouter answers as a plugin would, recording what it was asked.
type fakeRouter struct {
	got  abi.RouteRequest
	resp abi.RouteResponse
	err  error
	host plugin.RouteHost
}

func (f *fakeRouter) HandleRoute(_ context.Context, req abi.RouteRequest, host plugin.RouteHost) (abi.RouteResponse, error) {
	f.got, f.host = req, host
	return f.resp, f.err
}

func TestHandleRoute(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := db.New(dbtest.NewPool(t), nil)
	store, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	arts := &artifact.Store{DB: d, Storage: store, TempDir: t.TempDir()}
	content := bytes.Repeat([]byte("artifact "), 100)
	a, _, err := arts.Ingest(ctx, bytes.NewReader(content), int64(len(content)), nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeRouter{}
	srv := httptest.NewServer(&Handler{Plugin: f, DB: d, Storage: store, NaturalKeys: map[string][]string{"x.unit": {"name"}}})
	t.Cleanup(srv.Close)
	do := func(method, path, body string, hdr ...string) (*http.Response, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Add(hdr[i], hdr[i+1])
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	f.resp = abi.RouteResponse{Status: 201, Headers: map[string]string{"x-answer": "42"}, Body: []byte("made")}
	resp, body := do("POST", "/x/items?a=1", "payload", "X-Multi", "a", "X-Multi", "b")
	if resp.StatusCode != 201 || body != "made" || resp.Header.Get("X-Answer") != "42" {
		t.Errorf("response %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if f.got.Method != "POST" || f.got.Path != "/x/items" || f.got.Query != "a=1" || string(f.got.Body) != "payload" ||
		f.got.Headers["x-multi"] != "a, b" {
		t.Errorf("request %+v", f.got)
	}

	// serve_artifact: the host streams the bytes, Range included.
	f.resp = abi.RouteResponse{Status: 200, ServeArtifact: a.SHA256}
	resp, body = do("GET", "/x/file", "", "Range", "bytes=0-8")
	if resp.StatusCode != http.StatusPartialContent || body != "artifact " {
		t.Errorf("artifact range: %d %q", resp.StatusCode, body)
	}
	f.resp = abi.RouteResponse{Status: 200, ServeArtifact: strings.Repeat("0", 64)}
	if resp, _ := do("GET", "/x/file", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("missing artifact: %d", resp.StatusCode)
	}

	// Plugin errors map to statuses with a JSON body naming the code.
	for code, status := range map[string]int{abi.CodeNotFound: 404, abi.CodeInvalidInput: 400, abi.CodeUnimplemented: 501, abi.CodeInternal: 500} {
		f.err = abi.NewError(code, "because")
		resp, body := do("GET", "/x/y", "")
		var e map[string]string
		_ = json.Unmarshal([]byte(body), &e)
		if resp.StatusCode != status || e["code"] != code && code != abi.CodeInternal {
			t.Errorf("%s: %d %s", code, resp.StatusCode, body)
		}
	}
	f.err = nil
	big := strings.Repeat("x", maxBody+1)
	if resp, _ := do("PUT", "/x/big", big); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("big body: %d", resp.StatusCode)
	}

	// Lookups: scope all only.
	f.resp = abi.RouteResponse{Status: 204}
	do("GET", "/x/lookup", "")
	key, _ := db.NaturalKey(json.RawMessage(`{"name":"a"}`), []string{"name"})
	if _, err := d.GetOrCreateContents(ctx, []db.NewContent{{PulpType: "x.unit", NaturalKey: key, Fields: json.RawMessage(`{"name":"a"}`)}}); err != nil {
		t.Fatal(err)
	}
	found, err := f.host.Lookup(ctx, abi.LookupRequest{Type: "x.unit", Keys: []json.RawMessage{json.RawMessage(`{"name":"a"}`)}, Scope: abi.ScopeAll})
	if err != nil || len(found) != 1 {
		t.Errorf("lookup all: %v %v", found, err)
	}
	if _, err := f.host.Lookup(ctx, abi.LookupRequest{Type: "x.unit", Keys: []json.RawMessage{json.RawMessage(`{"name":"a"}`)}}); err == nil {
		t.Error("lookup in a version succeeded without a version")
	}
	if size, ok, err := f.host.StatArtifact(ctx, a.SHA256); !ok || err != nil || size != int64(len(content)) {
		t.Errorf("stat: %d %v %v", size, ok, err)
	}
}
