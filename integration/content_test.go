package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulpo/pulpo/integration/harness"
)

// contentGet fetches a content app path of srv.
func contentGet(t *testing.T, srv *harness.Server, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+srv.Addr()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp, body
}

func wantContent(t *testing.T, srv *harness.Server, path string, status int, body string, header ...string) *http.Response {
	t.Helper()
	resp, got := contentGet(t, srv, path, header...)
	if resp.StatusCode != status || body != "" && string(got) != body {
		if len(got) > 200 {
			got = got[:200]
		}
		t.Fatalf("GET %s = %d %q, want %d %q", path, resp.StatusCode, got, status, body)
	}
	return resp
}

// eventuallyContent polls a path until it answers status with body: a
// change reaches the content app by a notification, a moment after the
// task that made it completed.
func eventuallyContent(t *testing.T, srv *harness.Server, path string, status int, body string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, got := contentGet(t, srv, path)
		if resp.StatusCode == status && (body == "" || string(got) == body) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s = %d %q, want %d %q", path, resp.StatusCode, got, status, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestContentApp(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	// Units are shared by natural key across repositories: each policy
	// gets files of its own, or a file downloaded once is stored for all.
	files := smallFiles("few", 3)
	big := bytes.Repeat([]byte("pulpo content "), 100_000) // 1.4 MB
	files["big/blob.bin"] = big
	immediate := fixture(t, root, "up", files, nil)
	lazyFiles := smallFiles("lazy", 2)
	lazyBig := bytes.Repeat([]byte("pulpo on demand "), 100_000)
	lazyFiles["big/lazy.bin"] = lazyBig
	lazy := fixture(t, root, "lazy", lazyFiles, nil)
	streamed := fixture(t, root, "streamed", smallFiles("str", 2), nil)
	up := &countingFS{h: http.FileServer(http.Dir(root))}
	hs := httptest.NewServer(up)
	t.Cleanup(hs.Close)
	srv := harness.Start(t, harness.Options{})

	status := srv.JSON(t, http.MethodGet, "status/", nil, http.StatusOK)
	if apps := status["online_content_apps"].([]any); len(apps) != 1 {
		t.Fatalf("online content apps: %v", apps)
	}

	// publish syncs a repository with a policy, publishes it and
	// distributes the repository (its latest publication) at base.
	publish := func(t *testing.T, name, manifest, policy, base string, extra map[string]any) (repo, dist string) {
		t.Helper()
		rm := srv.JSON(t, http.MethodPost, "remotes/file/file/", map[string]any{"name": name, "url": hs.URL + manifest, "policy": policy}, http.StatusCreated)
		r := srv.JSON(t, http.MethodPost, "repositories/file/file/", map[string]any{"name": name, "remote": rm["pulp_href"]}, http.StatusCreated)
		repo = r["pulp_href"].(string)
		srv.RunTask(t, http.MethodPost, repo+"sync/", map[string]any{})
		srv.RunTask(t, http.MethodPost, "publications/file/file/", map[string]any{"repository": repo})
		body := map[string]any{"name": name, "base_path": base, "repository": repo}
		for k, v := range extra {
			body[k] = v
		}
		task := srv.RunTask(t, http.MethodPost, "distributions/file/file/", body)
		return repo, one(t, created(task, "/distributions/"))
	}

	t.Run("published files", func(t *testing.T) {
		_, dist := publish(t, "imm", immediate, "immediate", "imm/stable", nil)
		if d := srv.JSON(t, http.MethodGet, dist, nil, http.StatusOK); !strings.HasSuffix(d["base_url"].(string), "/pulp/content/imm/stable/") {
			t.Fatalf("base_url %v", d["base_url"])
		}
		eventuallyContent(t, srv, "/pulp/content/imm/stable/few/0001.txt", 200, "few file 1\n")
		resp := wantContent(t, srv, "/pulp/content/imm/stable/big/blob.bin", 200, string(big))
		sum := sha256.Sum256(big)
		etag := `"` + hex.EncodeToString(sum[:]) + `"`
		if resp.Header.Get("ETag") != etag || resp.Header.Get("Content-Length") != fmt.Sprint(len(big)) {
			t.Fatalf("headers %v", resp.Header)
		}
		wantContent(t, srv, "/pulp/content/imm/stable/big/blob.bin", 304, "", "If-None-Match", etag)
		wantContent(t, srv, "/pulp/content/imm/stable/big/blob.bin", 206, string(big[10:20]), "Range", "bytes=10-19")
		_, m := contentGet(t, srv, "/pulp/content/imm/stable/PULP_MANIFEST")
		if !strings.Contains(string(m), "few/0002.txt,") {
			t.Fatalf("manifest %q", m)
		}
		_, page := contentGet(t, srv, "/pulp/content/imm/stable/")
		for _, want := range []string{`href="PULP_MANIFEST"`, `href="big/"`, `href="few/"`} {
			if !strings.Contains(string(page), want) {
				t.Fatalf("listing lacks %s:\n%s", want, page)
			}
		}
		_, top := contentGet(t, srv, "/pulp/content/")
		if !strings.Contains(string(top), `href="imm/"`) {
			t.Fatalf("root listing:\n%s", top)
		}
		wantContent(t, srv, "/pulp/content/imm/stable", 301, "")
		wantContent(t, srv, "/pulp/content/imm/stable/nope.txt", 404, "")
		for _, p := range []string{"/pulp/content/imm/stable/../../../pulp/api/v3/status/", "/pulp/content/imm/stable/few%2F0001.txt"} {
			if resp, body := contentGet(t, srv, p); resp.StatusCode == 200 {
				t.Fatalf("%s served %q", p, body)
			}
		}

		// A new version, published, is what the repository distribution
		// serves next: the cache follows the API's changes.
		repoHref := srv.JSON(t, http.MethodGet, dist, nil, http.StatusOK)["repository"].(string)
		art := srv.JSON(t, http.MethodPost, "artifacts/", harness.Form{Files: map[string]harness.File{"file": {Data: []byte("added\n")}}}, http.StatusCreated)
		srv.RunTask(t, http.MethodPost, "content/file/files/", map[string]any{"relative_path": "new.txt", "artifact": art["pulp_href"], "repository": repoHref})
		wantContent(t, srv, "/pulp/content/imm/stable/new.txt", 404, "") // not published yet
		srv.RunTask(t, http.MethodPost, "publications/file/file/", map[string]any{"repository": repoHref})
		eventuallyContent(t, srv, "/pulp/content/imm/stable/new.txt", 200, "added\n")
		srv.RunTask(t, http.MethodPatch, dist, map[string]any{"base_path": "imm/moved"})
		eventuallyContent(t, srv, "/pulp/content/imm/moved/new.txt", 200, "added\n")
		wantContent(t, srv, "/pulp/content/imm/stable/new.txt", 404, "")
	})

	t.Run("on_demand: one upstream fetch, then local", func(t *testing.T) {
		before := up.hits.Load()
		publish(t, "lazy", lazy, "on_demand", "lazy", nil)
		if up.hits.Load() != before {
			t.Fatal("on_demand sync downloaded")
		}
		eventuallyContent(t, srv, "/pulp/content/lazy/lazy/0000.txt", 200, "lazy file 0\n")
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				resp, body := contentGet(t, srv, "/pulp/content/lazy/big/lazy.bin")
				if resp.StatusCode != 200 || !bytes.Equal(body, lazyBig) {
					t.Errorf("concurrent GET: %d, %d bytes", resp.StatusCode, len(body))
				}
			})
		}
		wg.Wait()
		if n := up.hits.Load() - before; n != 2 { // lazy/0000.txt and one big/lazy.bin
			t.Fatalf("%d upstream fetches", n)
		}
		sum := sha256.Sum256(lazyBig)
		deadline := time.Now().Add(5 * time.Second)
		for srv.JSON(t, http.MethodGet, "artifacts/?sha256="+hex.EncodeToString(sum[:]), nil, http.StatusOK)["count"] != float64(1) {
			if time.Now().After(deadline) {
				t.Fatal("the on-demand artifact was not saved")
			}
			time.Sleep(50 * time.Millisecond)
		}
		wantContent(t, srv, "/pulp/content/lazy/big/lazy.bin", 200, string(lazyBig))
		if n := up.hits.Load() - before; n != 2 {
			t.Fatalf("%d upstream fetches after the save", n)
		}
	})

	t.Run("streamed: fetched every time, never saved", func(t *testing.T) {
		publish(t, "stream", streamed, "streamed", "stream", nil)
		before := up.hits.Load()
		eventuallyContent(t, srv, "/pulp/content/stream/str/0001.txt", 200, "str file 1\n")
		wantContent(t, srv, "/pulp/content/stream/str/0001.txt", 200, "str file 1\n")
		if n := up.hits.Load() - before; n != 2 {
			t.Fatalf("%d upstream fetches", n)
		}
	})

	t.Run("guards", func(t *testing.T) {
		g := srv.JSON(t, http.MethodPost, "contentguards/core/header/", map[string]any{"name": "hg", "header_name": "x-token", "header_value": "s3cret"}, http.StatusCreated)
		publish(t, "guarded", immediate, "immediate", "guarded", map[string]any{"content_guard": g["pulp_href"]})
		eventuallyContent(t, srv, "/pulp/content/guarded/few/0001.txt", 403, "")
		wantContent(t, srv, "/pulp/content/guarded/few/0001.txt", 200, "few file 1\n", "X-Token", "s3cret")
	})
}
