package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulpo/pulpo/integration/harness"
)

// fetch GETs a full URL, following redirects (the Range header goes along),
// and returns the final response with its body.
func fetch(t *testing.T, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp, body
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// artifactKey is the storage key of an artifact with these bytes.
func artifactKey(b []byte) string {
	h := sha256Hex(b)
	return "artifact/" + h[:2] + "/" + h[2:]
}

// TestS3Storage runs pulpo with its artifacts in an S3 bucket: one serve
// process streams content, a second one on the same database redirects to
// presigned URLs. Immediate and on_demand syncs store their artifacts in the
// bucket and nothing on local disk; content comes back byte for byte either
// way, Range included, and guards are checked before a redirect.
func TestS3Storage(t *testing.T) {
	t.Parallel()
	bucket := harness.NewBucket(t)
	root := t.TempDir()
	files := smallFiles("s3", 3)
	big := bytes.Repeat([]byte("pulpo in a bucket "), 600_000) // 10.8 MB: a multipart upload
	files["big/blob.bin"] = big
	immediate := fixture(t, root, "imm", files, nil)
	lazyBody := bytes.Repeat([]byte("fetched on demand "), 50_000)
	lazy := fixture(t, root, "lazy", map[string][]byte{"lazy/one.bin": lazyBody, "lazy/two.txt": []byte("two\n")}, nil)
	up := &countingFS{h: http.FileServer(http.Dir(root))}
	hs := httptest.NewServer(up)
	t.Cleanup(hs.Close)

	stream := harness.Start(t, harness.Options{Env: bucket.Env()})
	// The same data directory, for its compiled-plugin cache.
	redirect := harness.Start(t, harness.Options{Workers: harness.NoWorkers, DatabaseURL: stream.DatabaseURL(), DataDir: stream.DataDir(),
		Env: append(bucket.Env(), "PULPO_CONTENT_REDIRECT=true", "PULPO_CONTENT_REDIRECT_TTL=1m")})

	if st := stream.JSON(t, http.MethodGet, "status/", nil, http.StatusOK); st["storage"] != nil {
		t.Errorf("status/ reports local disk usage for s3 storage: %v", st["storage"])
	}

	publish := func(t *testing.T, name, manifest, policy string, extra map[string]any) string {
		t.Helper()
		rm := stream.JSON(t, http.MethodPost, "remotes/file/file/", map[string]any{"name": name, "url": hs.URL + manifest, "policy": policy}, http.StatusCreated)
		r := stream.JSON(t, http.MethodPost, "repositories/file/file/", map[string]any{"name": name, "remote": rm["pulp_href"]}, http.StatusCreated)
		repo := r["pulp_href"].(string)
		stream.RunTask(t, http.MethodPost, repo+"sync/", map[string]any{})
		stream.RunTask(t, http.MethodPost, "publications/file/file/", map[string]any{"repository": repo})
		body := map[string]any{"name": name, "base_path": name, "repository": repo}
		for k, v := range extra {
			body[k] = v
		}
		stream.RunTask(t, http.MethodPost, "distributions/file/file/", body)
		return repo
	}

	t.Run("immediate", func(t *testing.T) {
		publish(t, "imm", immediate, "immediate", nil)
		// Every artifact is an object in the bucket, none a local file.
		keys := bucket.Keys(t)
		for p, body := range files {
			if !slices.Contains(keys, artifactKey(body)) {
				t.Errorf("%s (%s) is not in the bucket: %v", p, artifactKey(body), keys)
			}
		}
		if _, err := os.Stat(filepath.Join(stream.DataDir(), "media")); !os.IsNotExist(err) {
			t.Errorf("s3 storage made a local media directory: %v", err)
		}

		// Streamed by the host: whole, ranged and HEAD.
		eventuallyContent(t, stream, "/pulp/content/imm/s3/0001.txt", 200, "s3 file 1\n")
		resp := wantContent(t, stream, "/pulp/content/imm/big/blob.bin", 200, string(big))
		if resp.Header.Get("ETag") != `"`+sha256Hex(big)+`"` {
			t.Errorf("ETag %q", resp.Header.Get("ETag"))
		}
		wantContent(t, stream, "/pulp/content/imm/big/blob.bin", 206, string(big[9_000_000:9_000_100]), "Range", "bytes=9000000-9000099")
		wantContent(t, stream, "/pulp/content/imm/big/blob.bin", 206, string(big[len(big)-7:]), "Range", "bytes=-7")

		// Redirected: a 302 to the bucket, which serves the same bytes with
		// the content type and file name the content app would give.
		eventuallyContent(t, redirect, "/pulp/content/imm/s3/0001.txt", 302, "")
		resp, _ = contentGet(t, redirect, "/pulp/content/imm/big/blob.bin")
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, bucket.Server.Endpoint+"/"+bucket.Name+"/") || !strings.Contains(loc, "X-Amz-Signature=") {
			t.Fatalf("redirect: %d to %q", resp.StatusCode, loc)
		}
		resp, body := fetch(t, "http://"+redirect.Addr()+"/pulp/content/imm/big/blob.bin")
		if resp.StatusCode != 200 || sha256Hex(body) != sha256Hex(big) {
			t.Fatalf("following the redirect: %d, %d bytes, sha256 %s", resp.StatusCode, len(body), sha256Hex(body))
		}
		if ct, cd := resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"); ct != "application/octet-stream" || cd != "attachment; filename=blob.bin" {
			t.Errorf("redirected response: Content-Type %q, Content-Disposition %q", ct, cd)
		}
		resp, body = fetch(t, "http://"+redirect.Addr()+"/pulp/content/imm/s3/0002.txt")
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || string(body) != "s3 file 2\n" || !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("redirected text file: %d %q, Content-Type %q", resp.StatusCode, body, ct)
		}
		resp, body = fetch(t, "http://"+redirect.Addr()+"/pulp/content/imm/big/blob.bin", "Range", "bytes=100-199")
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, big[100:200]) {
			t.Errorf("ranged GET through the redirect: %d, %d bytes", resp.StatusCode, len(body))
		}
		// HEAD is answered by the content app itself.
		req, _ := http.NewRequest(http.MethodHead, "http://"+redirect.Addr()+"/pulp/content/imm/big/blob.bin", nil)
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 || resp.ContentLength != int64(len(big)) {
			t.Errorf("HEAD: %v %v", resp, err)
		} else {
			resp.Body.Close()
		}
		wantContent(t, redirect, "/pulp/content/imm/nope.bin", 404, "")
	})

	t.Run("guard before redirect", func(t *testing.T) {
		g := stream.JSON(t, http.MethodPost, "contentguards/core/header/", map[string]any{"name": "g", "header_name": "x-token", "header_value": "s3cret"}, http.StatusCreated)
		publish(t, "guarded", immediate, "immediate", map[string]any{"content_guard": g["pulp_href"]})
		eventuallyContent(t, redirect, "/pulp/content/guarded/s3/0001.txt", 403, "")
		if resp := wantContent(t, redirect, "/pulp/content/guarded/s3/0001.txt", 403, ""); resp.Header.Get("Location") != "" {
			t.Fatalf("a denied request got a Location: %v", resp.Header)
		}
		if resp := wantContent(t, redirect, "/pulp/content/guarded/s3/0001.txt", 302, "", "X-Token", "s3cret"); resp.Header.Get("Location") == "" {
			t.Fatal("an admitted request got no Location")
		}
	})

	t.Run("on_demand", func(t *testing.T) {
		before := up.hits.Load()
		publish(t, "lazy", lazy, "on_demand", nil)
		if up.hits.Load() != before {
			t.Fatal("an on_demand sync downloaded")
		}
		// Not stored yet: even the redirecting app streams it from the remote.
		eventuallyContent(t, redirect, "/pulp/content/lazy/lazy/two.txt", 200, "two\n")
		wantContent(t, stream, "/pulp/content/lazy/lazy/one.bin", 200, string(lazyBody))
		deadline := time.Now().Add(10 * time.Second)
		for stream.JSON(t, http.MethodGet, "artifacts/?sha256="+sha256Hex(lazyBody), nil, http.StatusOK)["count"] != float64(1) {
			if time.Now().After(deadline) {
				t.Fatal("the on-demand artifact was not saved")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if keys := bucket.Keys(t); !slices.Contains(keys, artifactKey(lazyBody)) {
			t.Fatalf("the saved on-demand artifact is not in the bucket: %v", keys)
		}
		// Saved: served from the bucket by both apps, the upstream untouched.
		hits := up.hits.Load()
		eventuallyContent(t, redirect, "/pulp/content/lazy/lazy/one.bin", 302, "")
		resp, body := fetch(t, "http://"+redirect.Addr()+"/pulp/content/lazy/lazy/one.bin")
		if resp.StatusCode != 200 || !bytes.Equal(body, lazyBody) {
			t.Fatalf("redirected on-demand artifact: %d, %d bytes", resp.StatusCode, len(body))
		}
		wantContent(t, stream, "/pulp/content/lazy/lazy/one.bin", 206, string(lazyBody[5:15]), "Range", "bytes=5-14")
		if up.hits.Load() != hits {
			t.Fatalf("%d upstream fetches after the save", up.hits.Load()-hits)
		}
	})
}
