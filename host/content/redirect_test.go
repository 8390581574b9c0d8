package content

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"

	"github.com/pulpo/pulpo/host/db"
)

// TestRedirect checks Deps.Redirect: a GET of a stored artifact answers 302
// to the URL it returns, asked for with the file's content type and name;
// guards are checked first; HEAD, a failure to sign and content not stored
// yet are answered as without it.
func TestRedirect(t *testing.T) {
	t.Parallel()
	type call struct{ key, contentType, disposition string }
	var mu sync.Mutex
	var calls []call
	fail := false
	signed := func() []call {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(calls)
	}
	e := newEnv(t, func(d *Deps) {
		d.Redirect = func(_ context.Context, key, contentType, disposition string) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			if fail {
				return "", errors.New("cannot sign")
			}
			calls = append(calls, call{key, contentType, disposition})
			return "https://bucket.example.com/" + key + "?X-Amz-Signature=abc", nil
		}
	})
	lazy := payload(5000, 3)
	e.up.set("/lazy.bin", route{body: lazy})
	repo, _, _ := e.repo(file{path: "dir/data.json", body: []byte(`{"a": 1}`), stored: true},
		file{path: "lazy.bin", body: lazy, remotes: []*db.Remote{e.remote("on_demand")}})
	e.distribution(db.Distribution{PulpType: "file.version", BasePath: "open", RepositoryID: &repo.ID})
	g, err := e.db.CreateContentGuard(e.ctx, db.ContentGuard{PulpType: "core.header", Name: e.name("guard"),
		Fields: json.RawMessage(`{"header_name": "x-key", "header_value": "k"}`)})
	if err != nil {
		t.Fatal(err)
	}
	e.distribution(db.Distribution{PulpType: "file.version", BasePath: "guarded", RepositoryID: &repo.ID, ContentGuardID: &g.ID})

	resp := e.want("/pulp/content/open/dir/data.json", http.StatusFound, "")
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Host != "bucket.example.com" || loc.Query().Get("X-Amz-Signature") != "abc" {
		t.Fatalf("Location %q", resp.Header.Get("Location"))
	}
	if resp.Header.Get("ETag") != "" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("redirect headers %v", resp.Header)
	}
	digest := sum([]byte(`{"a": 1}`))
	want := call{key: "artifact/" + digest[:2] + "/" + digest[2:], contentType: "application/json", disposition: "attachment; filename=data.json"}
	if got := signed(); len(got) != 1 || got[0] != want {
		t.Fatalf("Redirect called with %+v, want %+v", got, want)
	}

	// HEAD is answered here, with the artifact's headers.
	resp, _ = e.do(http.MethodHead, "/pulp/content/open/dir/data.json")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Length") != "8" || resp.Header.Get("Location") != "" {
		t.Fatalf("HEAD %d %v", resp.StatusCode, resp.Header)
	}

	// The guard decides before anything is signed.
	e.want("/pulp/content/guarded/dir/data.json", http.StatusForbidden, "")
	if got := signed(); len(got) != 1 {
		t.Fatalf("a denied request was signed: %+v", got)
	}
	e.want("/pulp/content/guarded/dir/data.json", http.StatusFound, "", "X-Key", "k")

	// Content not stored yet streams from its remote.
	e.want("/pulp/content/open/lazy.bin", 200, string(lazy))

	mu.Lock()
	fail = true
	mu.Unlock()
	e.want("/pulp/content/open/dir/data.json", http.StatusInternalServerError, "")
}
