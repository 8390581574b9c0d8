package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/pulpo/pulpo/integration/harness"
)

// ociRegistry is an upstream OCI registry for the container plugin: go-containerregistry's
// in-memory registry behind Docker-Hub-style token auth (401 with a Bearer challenge, a
// /token endpoint taking basic credentials) and a tag list paginated with Link headers,
// which that registry does not do by itself. It counts what it serves.
type ociRegistry struct {
	inner    http.Handler
	srv      *httptest.Server
	push     *httptest.Server // the bare registry, for pushing fixtures
	user     string
	pass     string
	pageSize int

	mu         sync.Mutex
	tokens     map[string]bool
	issued     int
	challenges int
	blobGETs   map[string]int // digest -> GETs of /v2/<name>/blobs/<digest>
	tagPages   int
}

func newOCIRegistry(t *testing.T) *ociRegistry {
	t.Helper()
	r := &ociRegistry{inner: registry.New(registry.Logger(log.New(io.Discard, "", 0))),
		user: "puller", pass: "s3cret", pageSize: 2, tokens: map[string]bool{}, blobGETs: map[string]int{}}
	r.srv = httptest.NewServer(r)
	r.push = httptest.NewServer(r.inner)
	t.Cleanup(r.srv.Close)
	t.Cleanup(r.push.Close)
	return r
}

func (r *ociRegistry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path == "/token" {
		r.token(w, req)
		return
	}
	repo := repoOf(req.URL.Path)
	r.mu.Lock()
	tok, _ := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	ok := r.tokens[tok]
	if !ok {
		r.challenges++
	}
	r.mu.Unlock()
	if !ok {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="upstream.test",scope="repository:%s:pull"`, r.srv.URL, repo))
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
		return
	}
	switch {
	case req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/tags/list"):
		r.tagList(w, req, repo)
		return
	case req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/"):
		r.mu.Lock()
		r.blobGETs[req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:]]++
		r.mu.Unlock()
	}
	r.inner.ServeHTTP(w, req)
}

// repoOf is the repository name in /v2/<name>/(tags|manifests|blobs)/....
func repoOf(p string) string {
	p = strings.TrimPrefix(p, "/v2/")
	for _, kind := range []string{"/tags/", "/manifests/", "/blobs/"} {
		if i := strings.LastIndex(p, kind); i >= 0 {
			return p[:i]
		}
	}
	return p
}

// token hands out a token for the registry's one user.
func (r *ociRegistry) token(w http.ResponseWriter, req *http.Request) {
	if u, p, ok := req.BasicAuth(); !ok || u != r.user || p != r.pass {
		http.Error(w, `{"details":"incorrect username or password"}`, http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	r.issued++
	tok := fmt.Sprintf("token-%d", r.issued)
	r.tokens[tok] = true
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"token":%q,"expires_in":300}`, tok)
}

// tagList pages the inner registry's (sorted) tag list by n (default pageSize) and last.
func (r *ociRegistry) tagList(w http.ResponseWriter, req *http.Request, repo string) {
	rec := httptest.NewRecorder()
	all := req.Clone(req.Context())
	all.URL.RawQuery = ""
	r.inner.ServeHTTP(rec, all)
	if rec.Code != http.StatusOK {
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
		return
	}
	var tl struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &tl); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	q := req.URL.Query()
	n := r.pageSize
	if v, err := strconv.Atoi(q.Get("n")); err == nil && v > 0 {
		n = v
	}
	tags := tl.Tags
	if last := q.Get("last"); last != "" {
		i, _ := slices.BinarySearch(tags, last)
		for i < len(tags) && tags[i] <= last {
			i++
		}
		tags = tags[i:]
	}
	if len(tags) > n {
		tags = tags[:n]
		w.Header().Set("Link", fmt.Sprintf(`</v2/%s/tags/list?n=%d&last=%s>; rel="next"`, repo, n, url.QueryEscape(tags[n-1])))
	}
	r.mu.Lock()
	r.tagPages++
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"name": tl.Name, "tags": tags})
}

func (r *ociRegistry) counts() (issued, challenges, tagPages int, blobGETs map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.issued, r.challenges, r.tagPages, maps.Clone(r.blobGETs)
}

// pushed is what a fixture put upstream: raw manifests by digest, config and layer
// digests, the digest each tag points at.
type pushed struct {
	manifests map[string][]byte
	configs   map[string]bool
	layers    map[string]bool
	tags      map[string]string
}

func newPushed() *pushed {
	return &pushed{manifests: map[string][]byte{}, configs: map[string]bool{}, layers: map[string]bool{}, tags: map[string]string{}}
}

func (p *pushed) blobs() int { return len(p.configs) + len(p.layers) }

// record notes an image's manifest, config and layers.
func (p *pushed) record(t *testing.T, img v1.Image) string {
	t.Helper()
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	p.manifests[d.String()] = raw
	p.configs[m.Config.Digest.String()] = true
	for _, l := range m.Layers {
		p.layers[l.Digest.String()] = true
	}
	return d.String()
}

func (r *ociRegistry) ref(t *testing.T, repo, tag string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(strings.TrimPrefix(r.push.URL, "http://")+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// pushImage pushes a random image of n layers as repo:tag; oci makes it an OCI image.
func (r *ociRegistry) pushImage(t *testing.T, p *pushed, repo, tag string, layers int64, oci bool) v1.Image {
	t.Helper()
	img := randomImage(t, layers, oci)
	if err := remote.Write(r.ref(t, repo, tag), img); err != nil {
		t.Fatal(err)
	}
	p.tags[tag] = p.record(t, img)
	return img
}

func randomImage(t *testing.T, layers int64, oci bool) v1.Image {
	t.Helper()
	img, err := random.Image(512, layers)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{Architecture: "amd64", OS: "linux",
		Config: v1.Config{Labels: map[string]string{"org.example.fixture": "yes"}}, RootFS: mustConfig(t, img).RootFS})
	if err != nil {
		t.Fatal(err)
	}
	if oci {
		img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
	}
	return img
}

func mustConfig(t *testing.T, img v1.Image) *v1.ConfigFile {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf
}

// pushIndex pushes an OCI index of one amd64 and one arm64 image as repo:tag.
func (r *ociRegistry) pushIndex(t *testing.T, p *pushed, repo, tag string) (index, arm string) {
	t.Helper()
	amd := randomImage(t, 1, true)
	armImg := randomImage(t, 1, true)
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: armImg, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}})
	if err := remote.WriteIndex(r.ref(t, repo, tag), idx); err != nil {
		t.Fatal(err)
	}
	p.record(t, amd)
	arm = p.record(t, armImg)
	raw, err := idx.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	p.manifests[d.String()] = raw
	p.tags[tag] = d.String()
	return d.String(), arm
}

// pushArtifact pushes an OCI artifact (a custom config media type and a custom layer) as
// repo:tag.
func (r *ociRegistry) pushArtifact(t *testing.T, p *pushed, repo, tag string) string {
	t.Helper()
	layer, err := random.Layer(256, "application/vnd.example.data.v1")
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.ConfigMediaType(img, "application/vnd.example.artifact.config.v1+json")
	if err := remote.Write(r.ref(t, repo, tag), img); err != nil {
		t.Fatal(err)
	}
	d := p.record(t, img)
	p.tags[tag] = d
	return d
}

func TestContainerSync(t *testing.T) {
	t.Parallel()
	up := newOCIRegistry(t)
	app := newPushed()
	up.pushImage(t, app, "test/app", "v1", 2, false)
	up.pushImage(t, app, "test/app", "v2", 2, true)
	up.pushImage(t, app, "test/app", "v3", 1, false)
	index, arm := up.pushIndex(t, app, "test/app", "multi")
	artifact := up.pushArtifact(t, app, "test/app", "artifact")
	lazy := newPushed()
	up.pushImage(t, lazy, "test/lazy", "a", 2, false)
	up.pushImage(t, lazy, "test/lazy", "b", 1, true)

	srv := harness.Start(t, harness.Options{})
	newRepo := func(t *testing.T, name string, remoteFields map[string]any) string {
		t.Helper()
		body := map[string]any{"name": name, "url": up.srv.URL, "policy": "immediate", "username": up.user, "password": up.pass}
		for k, v := range remoteFields {
			body[k] = v
		}
		rm := srv.JSON(t, http.MethodPost, "remotes/container/container/", body, http.StatusCreated)
		repo := srv.JSON(t, http.MethodPost, "repositories/container/container/", map[string]any{"name": name, "remote": rm["pulp_href"]}, http.StatusCreated)
		return repo["pulp_href"].(string)
	}
	list := func(t *testing.T, plural, version, query string) []map[string]any {
		t.Helper()
		page := srv.JSON(t, http.MethodGet, "content/container/"+plural+"/?limit=1000&repository_version="+version+query, nil, http.StatusOK)
		var out []map[string]any
		for _, r := range page["results"].([]any) {
			out = append(out, r.(map[string]any))
		}
		if int(page["count"].(float64)) != len(out) {
			t.Fatalf("%s: count %v, %d results", plural, page["count"], len(out))
		}
		return out
	}
	counts := func(t *testing.T, version string, tags, manifests, blobs int) {
		t.Helper()
		for plural, want := range map[string]int{"tags": tags, "manifests": manifests, "blobs": blobs} {
			if got := len(list(t, plural, version, "")); got != want {
				t.Errorf("%s holds %d %s, want %d", version, got, plural, want)
			}
		}
	}
	artifactOf := func(t *testing.T, digest string) map[string]any {
		t.Helper()
		page := srv.JSON(t, http.MethodGet, "artifacts/?sha256="+strings.TrimPrefix(digest, "sha256:"), nil, http.StatusOK)
		if page["count"] == float64(0) {
			return nil
		}
		return page["results"].([]any)[0].(map[string]any)
	}

	t.Run("immediate, exact manifests, re-sync", func(t *testing.T) {
		rh := newRepo(t, "app", map[string]any{"upstream_name": "test/app"})
		srv.RunTask(t, http.MethodPost, rh+"sync/", map[string]any{})
		v1 := rh + "versions/1/"
		counts(t, v1, 5, len(app.manifests), app.blobs())
		// Every manifest is stored byte for byte: an artifact whose sha256 is its digest.
		for d, raw := range app.manifests {
			a := artifactOf(t, d)
			if a == nil || a["size"] != float64(len(raw)) {
				t.Errorf("manifest %s: artifact %v, want %d bytes", d, a, len(raw))
			}
		}
		for d := range app.layers {
			if artifactOf(t, d) == nil {
				t.Errorf("layer %s not downloaded", d)
			}
		}
		for _, tg := range list(t, "tags", v1, "") {
			if app.tags[tg["name"].(string)] != tg["digest"] {
				t.Errorf("tag %v, upstream points at %s", tg, app.tags[tg["name"].(string)])
			}
		}
		idx := list(t, "manifests", v1, "&digest="+index)
		child := list(t, "manifests", v1, "&digest="+arm)
		art := list(t, "manifests", v1, "&digest="+artifact)
		if len(idx) != 1 || idx[0]["type"] != "index" || idx[0]["media_type"] != string(types.OCIImageIndex) {
			t.Errorf("index %v", idx)
		}
		if len(child) != 1 || child[0]["architecture"] != "amd64" && child[0]["architecture"] != "arm64" ||
			child[0]["labels"].(map[string]any)["org.example.fixture"] != "yes" {
			t.Errorf("index entry %v", child)
		}
		if len(art) != 1 || art[0]["type"] != "artifact" || art[0]["artifact_type"] != "application/vnd.example.artifact.config.v1+json" {
			t.Errorf("artifact %v", art)
		}
		issued, challenges, pages, _ := up.counts()
		if issued == 0 || challenges > 3 || pages != 3 {
			t.Errorf("%d tokens, %d challenges, %d tag list pages; want some tokens, few challenges, 3 pages", issued, challenges, pages)
		}

		srv.RunTask(t, http.MethodPost, rh+"sync/", map[string]any{})
		if r := srv.JSON(t, http.MethodGet, rh, nil, http.StatusOK); r["latest_version_href"] != v1 {
			t.Fatalf("unchanged re-sync made %v", r["latest_version_href"])
		}
		srv.RunTask(t, http.MethodPost, rh+"sync/", map[string]any{"mirror": true})
		if r := srv.JSON(t, http.MethodGet, rh, nil, http.StatusOK); r["latest_version_href"] != v1 {
			t.Fatalf("unchanged mirror re-sync made %v", r["latest_version_href"])
		}
	})

	t.Run("include and exclude tags", func(t *testing.T) {
		rh := newRepo(t, "app-v", map[string]any{"upstream_name": "test/app", "include_tags": []string{"v*"}, "exclude_tags": []string{"v3"}})
		srv.RunTask(t, http.MethodPost, rh+"sync/", map[string]any{})
		v1 := rh + "versions/1/"
		var names []string
		for _, tg := range list(t, "tags", v1, "") {
			names = append(names, tg["name"].(string))
		}
		slices.Sort(names)
		if !slices.Equal(names, []string{"v1", "v2"}) {
			t.Fatalf("tags %v", names)
		}
		counts(t, v1, 2, 2, 6) // 2 configs, 2 + 2 layers
	})

	t.Run("on_demand downloads no blob", func(t *testing.T) {
		rh := newRepo(t, "lazy", map[string]any{"upstream_name": "test/lazy", "policy": "on_demand"})
		srv.RunTask(t, http.MethodPost, rh+"sync/", map[string]any{})
		counts(t, rh+"versions/1/", 2, 2, lazy.blobs())
		_, _, _, gets := up.counts()
		for d := range lazy.layers {
			if gets[d] != 0 || artifactOf(t, d) != nil {
				t.Errorf("layer %s: %d GETs upstream, artifact %v", d, gets[d], artifactOf(t, d))
			}
		}
		// Configs are read as metadata (labels, os, architecture), never stored.
		for d := range lazy.configs {
			if artifactOf(t, d) != nil {
				t.Errorf("config %s stored by an on_demand sync", d)
			}
		}
		for d, raw := range lazy.manifests {
			if a := artifactOf(t, d); a == nil || a["size"] != float64(len(raw)) {
				t.Errorf("manifest %s: artifact %v", d, a)
			}
		}
	})

	t.Run("wrong password fails naming the token realm", func(t *testing.T) {
		rh := newRepo(t, "denied", map[string]any{"upstream_name": "test/app", "password": "wrong"})
		task := srv.WaitTask(t, srv.JSON(t, http.MethodPost, rh+"sync/", map[string]any{}, http.StatusAccepted)["task"].(string))
		if task["state"] != "failed" {
			t.Fatalf("sync with a wrong password: %v", task)
		}
		msg := task["error"].(map[string]any)["description"].(string)
		for _, s := range []string{up.srv.URL + "/token", "/v2/test/app/tags/list", "username and password were refused"} {
			if !strings.Contains(msg, s) {
				t.Errorf("error %q does not name %q", msg, s)
			}
		}
		if strings.Contains(msg, "wrong") {
			t.Errorf("error leaks the password: %s", msg)
		}
	})
}
