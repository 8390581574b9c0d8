package integration

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/pulpo/pulpo/integration/harness"
)

// These tests speak the OCI distribution API (/v2/) to the real pulpo binary:
// go-containerregistry's remote package for what clients such as crane do,
// raw HTTP for headers, chunked uploads and bad input, and the REST API for
// what a push leaves behind (a container.container_push repository with a
// version per manifest push, a distribution whose base_path is the name).

// ociManifestType and dockerManifestType are the image manifest media types.
const (
	ociManifestType    = string(types.OCIManifestSchema1)
	dockerManifestType = string(types.DockerManifestSchema2)
	allManifestTypes   = ociManifestType + ", " + dockerManifestType + ", " + string(types.OCIImageIndex) + ", " + string(types.DockerManifestList)
)

// regAuth gives go-containerregistry the harness's admin credentials, used
// when the registry challenges for them.
var regAuth = remote.WithAuth(&authn.Basic{Username: harness.AdminUsername, Password: harness.AdminPassword})

// v2 is pulpo's registry as a client sees it.
type v2 struct {
	srv  *harness.Server
	host string
}

func newV2(srv *harness.Server) v2 { return v2{srv: srv, host: srv.Addr()} }

// ref parses "repo:tag" or "repo@sha256:..." on pulpo (plain HTTP).
func (r v2) ref(t *testing.T, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(r.host+"/"+s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// repo is the repository name.Repository of name on pulpo.
func (r v2) repo(t *testing.T, repo string) name.Repository {
	t.Helper()
	n, err := name.NewRepository(r.host+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// do sends a request to path on the server (e.g. "/v2/a/b/tags/list") with
// an optional body and header pairs.
func (r v2) do(t *testing.T, method, path string, body []byte, header ...string) (*http.Response, []byte) {
	t.Helper()
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	var b any
	if body != nil {
		b = io.Reader(bytes.NewReader(body))
	}
	return r.srv.Do(method, path, b, h)
}

// location resolves a response's Location header against the server.
func (r v2) location(t *testing.T, resp *http.Response) string {
	t.Helper()
	loc := resp.Header.Get("Location")
	if loc == "" {
		t.Fatalf("%s %s: %s without a Location header", resp.Request.Method, resp.Request.URL, resp.Status)
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		t.Fatalf("Location %q: %v", loc, err)
	}
	return u.String()
}

// startUpload opens an upload session for repo and returns its URL.
func (r v2) startUpload(t *testing.T, repo string) string {
	t.Helper()
	resp, body := r.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v2/%s/blobs/uploads/: %s %s", repo, resp.Status, body)
	}
	return r.location(t, resp)
}

// withDigest adds digest=d to an upload URL that may carry a query already.
func withDigest(t *testing.T, upload, d string) string {
	t.Helper()
	u, err := url.Parse(upload)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("digest", d)
	u.RawQuery = q.Encode()
	return u.String()
}

// pushBlob uploads data to repo in one POST + PUT, the way most clients do,
// and returns its digest.
func (r v2) pushBlob(t *testing.T, repo string, data []byte) string {
	t.Helper()
	d := sha256Digest(data)
	resp, body := r.do(t, http.MethodPut, withDigest(t, r.startUpload(t, repo), d), data, "Content-Type", "application/octet-stream")
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Docker-Content-Digest") != d {
		t.Fatalf("PUT blob %s to %s: %s, Docker-Content-Digest %q; %s", d, repo, resp.Status, resp.Header.Get("Docker-Content-Digest"), body)
	}
	return d
}

// putManifest PUTs raw as repo's manifest ref with its media type.
func (r v2) putManifest(t *testing.T, repo, ref string, raw []byte, mediaType string) (*http.Response, []byte) {
	t.Helper()
	return r.do(t, http.MethodPut, "/v2/"+repo+"/manifests/"+ref, raw, "Content-Type", mediaType)
}

// ociError fails t unless the response has the status and an OCI error body
// whose first code is one of codes.
func ociError(t *testing.T, what string, resp *http.Response, body []byte, status int, codes ...string) {
	t.Helper()
	var e struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	err := json.Unmarshal(body, &e)
	if resp.StatusCode != status || err != nil || len(e.Errors) == 0 || !slices.Contains(codes, e.Errors[0].Code) {
		t.Errorf("%s: %s %s; want %d with an OCI error code in %v", what, resp.Status, truncated(body), status, codes)
	}
}

func truncated(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

func sha256Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// pushState is what the REST API shows of a pushed repository.
type pushState struct {
	repo    string // href, "" when there is none
	latest  string // latest_version_href
	version int    // its number
}

// pushRepo returns the container.container_push repository named name.
func pushRepo(t *testing.T, srv *harness.Server, repoName string) pushState {
	t.Helper()
	page := srv.JSON(t, http.MethodGet, "repositories/container/container_push/?name="+url.QueryEscape(repoName), nil, http.StatusOK)
	results, _ := page["results"].([]any)
	if len(results) == 0 {
		return pushState{}
	}
	if len(results) > 1 {
		t.Fatalf("%d push repositories named %q", len(results), repoName)
	}
	r := results[0].(map[string]any)
	s := pushState{repo: r["pulp_href"].(string)}
	s.latest, _ = r["latest_version_href"].(string)
	if s.latest != "" {
		n, err := strconv.Atoi(strings.TrimSuffix(s.latest[strings.LastIndex(strings.TrimSuffix(s.latest, "/"), "/")+1:], "/"))
		if err != nil {
			t.Fatalf("latest_version_href %q: %v", s.latest, err)
		}
		s.version = n
	}
	return s
}

// apiCount is the count of a REST list.
func apiCount(t *testing.T, srv *harness.Server, path string) int {
	t.Helper()
	page := srv.JSON(t, http.MethodGet, path, nil, http.StatusOK)
	n, ok := page["count"].(float64)
	if !ok {
		t.Fatalf("GET %s: no count in %v", path, page)
	}
	return int(n)
}

// versionContent lists the values of field of the units of a content type
// (tags, manifests, blobs) in a repository version.
func versionContent(t *testing.T, srv *harness.Server, plural, version, field string) []string {
	t.Helper()
	page := srv.JSON(t, http.MethodGet, "content/container/"+plural+"/?limit=1000&repository_version="+url.QueryEscape(version), nil, http.StatusOK)
	var out []string
	for _, u := range page["results"].([]any) {
		out = append(out, fmt.Sprint(u.(map[string]any)[field]))
	}
	slices.Sort(out)
	return out
}

// readAll reads a layer's compressed bytes.
func readAll(t *testing.T, l v1.Layer) []byte {
	t.Helper()
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mustDigest(t *testing.T, x interface{ Digest() (v1.Hash, error) }) string {
	t.Helper()
	d, err := x.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func mustRaw(t *testing.T, x interface{ RawManifest() ([]byte, error) }) []byte {
	t.Helper()
	raw, err := x.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// checkImage pulls ref from pulpo and compares it with img: the same
// manifest bytes and digest, byte-identical config and layers.
func checkImage(t *testing.T, ref name.Reference, img v1.Image) {
	t.Helper()
	got, err := remote.Image(ref, regAuth)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	if g, w := mustDigest(t, got), mustDigest(t, img); g != w {
		t.Errorf("pull %s: manifest digest %s, pushed %s", ref, g, w)
	}
	if !bytes.Equal(mustRaw(t, got), mustRaw(t, img)) {
		t.Errorf("pull %s: manifest bytes differ from the pushed ones", ref)
	}
	wantCfg, _ := img.RawConfigFile()
	if gotCfg, err := got.RawConfigFile(); err != nil || !bytes.Equal(gotCfg, wantCfg) {
		t.Errorf("pull %s: config differs (%v)", ref, err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		d, _ := l.Digest()
		pulled, err := remote.Layer(ref.Context().Digest(d.String()), regAuth)
		if err != nil {
			t.Fatalf("pull layer %s: %v", d, err)
		}
		if !bytes.Equal(readAll(t, pulled), readAll(t, l)) {
			t.Errorf("layer %s: pulled bytes differ from the pushed ones", d)
		}
	}
}

// imageManifest is an OCI image manifest of a config and layers.
func imageManifest(config []byte, layers ...[]byte) []byte {
	desc := func(mt string, b []byte) map[string]any {
		return map[string]any{"mediaType": mt, "digest": sha256Digest(b), "size": len(b)}
	}
	var ls []map[string]any
	for _, l := range layers {
		ls = append(ls, desc("application/vnd.oci.image.layer.v1.tar+gzip", l))
	}
	raw, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": ociManifestType,
		"config": desc("application/vnd.oci.image.config.v1+json", config), "layers": ls})
	return raw
}

func imageConfig(t *testing.T) []byte {
	t.Helper()
	raw, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "author": hex.EncodeToString(randomBytes(t, 8)),
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{}}})
	return raw
}

func TestRegistryPushAndPull(t *testing.T) {
	t.Parallel()
	srv := harness.Start(t, harness.Options{})
	reg := newV2(srv)

	t.Run("ping", func(t *testing.T) {
		resp, _ := reg.do(t, http.MethodGet, "/v2/", nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
			t.Fatalf("GET /v2/: %s, Docker-Distribution-API-Version %q", resp.Status, resp.Header.Get("Docker-Distribution-API-Version"))
		}
	})

	t.Run("image push, pull, and the API side", func(t *testing.T) {
		img := randomImage(t, 3, false)
		if err := remote.Write(reg.ref(t, "e2e/app:v1"), img, regAuth); err != nil {
			t.Fatalf("push: %v", err)
		}
		checkImage(t, reg.ref(t, "e2e/app:v1"), img)
		checkImage(t, reg.ref(t, "e2e/app@"+mustDigest(t, img)), img)

		first := pushRepo(t, srv, "e2e/app")
		if first.repo == "" || first.version != 1 {
			t.Fatalf("after one push: push repository %+v, want one at version 1", first)
		}
		dists := srv.JSON(t, http.MethodGet, "distributions/container/container/?base_path=e2e/app", nil, http.StatusOK)
		if dists["count"] != float64(1) || dists["results"].([]any)[0].(map[string]any)["repository"] != first.repo {
			t.Fatalf("distributions with base_path e2e/app: %v, want one serving %s", dists["results"], first.repo)
		}

		img2 := randomImage(t, 2, true)
		if err := remote.Write(reg.ref(t, "e2e/app:v2"), img2, regAuth); err != nil {
			t.Fatalf("push v2: %v", err)
		}
		second := pushRepo(t, srv, "e2e/app")
		if second.repo != first.repo || second.version != first.version+1 {
			t.Fatalf("after a second push: %+v, want %s at version %d", second, first.repo, first.version+1)
		}
		if got := versionContent(t, srv, "tags", second.latest, "name"); !slices.Equal(got, []string{"v1", "v2"}) {
			t.Errorf("tags in %s: %v", second.latest, got)
		}
		want := []string{mustDigest(t, img), mustDigest(t, img2)}
		slices.Sort(want)
		if got := versionContent(t, srv, "manifests", second.latest, "digest"); !slices.Equal(got, want) {
			t.Errorf("manifests in %s: %v, want %v", second.latest, got, want)
		}
		if got := len(versionContent(t, srv, "blobs", second.latest, "digest")); got != 2+3+2 {
			t.Errorf("%d blobs in %s, want 7 (2 configs, 5 layers)", got, second.latest)
		}
		checkImage(t, reg.ref(t, "e2e/app:v2"), img2)
		checkImage(t, reg.ref(t, "e2e/app:v1"), img)
	})

	t.Run("index of two platforms", func(t *testing.T) {
		amd, arm := randomImage(t, 1, true), randomImage(t, 1, true)
		idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
			mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
			mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}})
		if err := remote.WriteIndex(reg.ref(t, "e2e/multi:latest"), idx, regAuth); err != nil {
			t.Fatalf("push index: %v", err)
		}
		got, err := remote.Index(reg.ref(t, "e2e/multi:latest"), regAuth)
		if err != nil {
			t.Fatalf("pull index: %v", err)
		}
		if mustDigest(t, got) != mustDigest(t, idx) || !bytes.Equal(mustRaw(t, got), mustRaw(t, idx)) {
			t.Fatalf("pulled index %s differs from pushed %s", mustDigest(t, got), mustDigest(t, idx))
		}
		im, err := got.IndexManifest()
		if err != nil || len(im.Manifests) != 2 || im.Manifests[1].Platform == nil || im.Manifests[1].Platform.Architecture != "arm64" {
			t.Fatalf("index manifest %+v (%v)", im, err)
		}
		checkImage(t, reg.ref(t, "e2e/multi@"+mustDigest(t, amd)), amd)
		checkImage(t, reg.ref(t, "e2e/multi@"+mustDigest(t, arm)), arm)
		// The index, its two children and the tag: one version for the
		// tagged push (children pushed by digest may add more).
		st := pushRepo(t, srv, "e2e/multi")
		if got := versionContent(t, srv, "manifests", st.latest, "digest"); len(got) != 3 {
			t.Errorf("manifests in %s: %v, want the index and its 2 images", st.latest, got)
		}
	})

	t.Run("OCI artifact with its own config media type", func(t *testing.T) {
		layer, err := random.Layer(300, "application/vnd.example.data.v1")
		if err != nil {
			t.Fatal(err)
		}
		art, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
		if err != nil {
			t.Fatal(err)
		}
		art = mutate.ConfigMediaType(art, "application/vnd.example.artifact.config.v1+json")
		if err := remote.Write(reg.ref(t, "e2e/artifact:v1"), art, regAuth); err != nil {
			t.Fatalf("push artifact: %v", err)
		}
		desc, err := remote.Get(reg.ref(t, "e2e/artifact:v1"), regAuth)
		if err != nil {
			t.Fatalf("get artifact: %v", err)
		}
		if desc.MediaType != types.OCIManifestSchema1 || desc.Digest.String() != mustDigest(t, art) || !bytes.Equal(desc.Manifest, mustRaw(t, art)) {
			t.Fatalf("artifact: %s %s, pushed %s", desc.MediaType, desc.Digest, mustDigest(t, art))
		}
		checkImage(t, reg.ref(t, "e2e/artifact:v1"), art)
		st := pushRepo(t, srv, "e2e/artifact")
		page := srv.JSON(t, http.MethodGet, "content/container/manifests/?repository_version="+url.QueryEscape(st.latest), nil, http.StatusOK)
		if page["count"] != float64(1) || page["results"].([]any)[0].(map[string]any)["artifact_type"] != "application/vnd.example.artifact.config.v1+json" {
			t.Errorf("artifact manifest in the API: %v", page["results"])
		}
	})

	t.Run("tags/list and _catalog pagination", func(t *testing.T) {
		img := randomImage(t, 1, true)
		tags := []string{"a1", "a2", "b1", "b2", "c1"}
		if err := remote.Write(reg.ref(t, "e2e/paged:"+tags[0]), img, regAuth); err != nil {
			t.Fatal(err)
		}
		for _, tg := range tags[1:] {
			if err := remote.Tag(reg.repo(t, "e2e/paged").Tag(tg), img, regAuth); err != nil {
				t.Fatalf("tag %s: %v", tg, err)
			}
		}
		if got := pagedList(t, reg, "/v2/e2e/paged/tags/list", "tags", 0); !slices.Equal(got, tags) {
			t.Errorf("tags/list: %v, want %v", got, tags)
		}
		if got := pagedList(t, reg, "/v2/e2e/paged/tags/list?n=2", "tags", 2); !slices.Equal(got, tags) {
			t.Errorf("tags/list by pages of 2: %v, want %v", got, tags)
		}
		resp, body := reg.do(t, http.MethodGet, "/v2/e2e/paged/tags/list?n=2&last=b1", nil)
		var tl struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		}
		if err := json.Unmarshal(body, &tl); err != nil || resp.StatusCode != http.StatusOK || tl.Name != "e2e/paged" || !slices.Equal(tl.Tags, []string{"b2", "c1"}) {
			t.Errorf("tags/list?n=2&last=b1: %s %s", resp.Status, body)
		}

		for _, n := range []string{"e2e/cat-c", "e2e/cat-a", "e2e/cat-b"} {
			if err := remote.Write(reg.ref(t, n+":x"), img, regAuth); err != nil {
				t.Fatal(err)
			}
		}
		all := pagedList(t, reg, "/v2/_catalog", "repositories", 0)
		if !slices.IsSorted(all) {
			t.Errorf("_catalog not sorted: %v", all)
		}
		for _, n := range []string{"e2e/app", "e2e/cat-a", "e2e/cat-b", "e2e/cat-c", "e2e/paged"} {
			if !slices.Contains(all, n) {
				t.Errorf("_catalog %v lacks %s", all, n)
			}
		}
		if got := pagedList(t, reg, "/v2/_catalog?n=2", "repositories", 2); !slices.Equal(got, all) {
			t.Errorf("_catalog by pages of 2: %v, want %v", got, all)
		}
	})

	t.Run("HEAD headers and Range", func(t *testing.T) {
		img := randomImage(t, 1, false)
		if err := remote.Write(reg.ref(t, "e2e/head:v1"), img, regAuth); err != nil {
			t.Fatal(err)
		}
		raw, d := mustRaw(t, img), mustDigest(t, img)
		for _, ref := range []string{"v1", d} {
			resp, body := reg.do(t, http.MethodHead, "/v2/e2e/head/manifests/"+ref, nil, "Accept", allManifestTypes)
			if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.Header.Get("Docker-Content-Digest") != d ||
				resp.Header.Get("Content-Length") != strconv.Itoa(len(raw)) || resp.Header.Get("Content-Type") != dockerManifestType {
				t.Errorf("HEAD manifest %s: %s, headers %v, %d body bytes", ref, resp.Status, resp.Header, len(body))
			}
			resp, body = reg.do(t, http.MethodGet, "/v2/e2e/head/manifests/"+ref, nil, "Accept", allManifestTypes)
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, raw) || resp.Header.Get("Docker-Content-Digest") != d || resp.Header.Get("Content-Type") != dockerManifestType {
				t.Errorf("GET manifest %s: %s, headers %v", ref, resp.Status, resp.Header)
			}
		}

		data := randomBytes(t, 4096)
		bd := reg.pushBlob(t, "e2e/head", data)
		resp, body := reg.do(t, http.MethodHead, "/v2/e2e/head/blobs/"+bd, nil)
		if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.Header.Get("Docker-Content-Digest") != bd || resp.Header.Get("Content-Length") != "4096" {
			t.Errorf("HEAD blob: %s, headers %v", resp.Status, resp.Header)
		}
		resp, body = reg.do(t, http.MethodGet, "/v2/e2e/head/blobs/"+bd, nil, "Range", "bytes=100-1123")
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[100:1124]) || resp.Header.Get("Content-Range") != "bytes 100-1123/4096" {
			t.Errorf("GET blob bytes=100-1123: %s, Content-Range %q, %d bytes", resp.Status, resp.Header.Get("Content-Range"), len(body))
		}
		resp, body = reg.do(t, http.MethodGet, "/v2/e2e/head/blobs/"+bd, nil)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
			t.Errorf("GET blob: %s, %d bytes", resp.Status, len(body))
		}
		resp, body = reg.do(t, http.MethodGet, "/v2/e2e/head/blobs/"+sha256Digest([]byte("never pushed")), nil)
		ociError(t, "GET unknown blob", resp, body, http.StatusNotFound, "BLOB_UNKNOWN")
		resp, body = reg.do(t, http.MethodGet, "/v2/e2e/head/manifests/nope", nil)
		ociError(t, "GET unknown tag", resp, body, http.StatusNotFound, "MANIFEST_UNKNOWN")
		resp, body = reg.do(t, http.MethodGet, "/v2/e2e/never-pushed/tags/list", nil)
		ociError(t, "tags/list of an unknown name", resp, body, http.StatusNotFound, "NAME_UNKNOWN")
	})

	t.Run("chunked upload, out-of-order and repeated chunks", func(t *testing.T) {
		data := randomBytes(t, 3*1024+17)
		d := sha256Digest(data)
		loc := reg.startUpload(t, "e2e/chunked")
		patch := func(loc string, from, to int) (*http.Response, []byte) {
			return reg.do(t, http.MethodPatch, loc, data[from:to], "Content-Type", "application/octet-stream",
				"Content-Range", fmt.Sprintf("%d-%d", from, to-1))
		}
		resp, body := patch(loc, 0, 1024)
		if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Range") != "0-1023" {
			t.Fatalf("first chunk: %s, Range %q; %s", resp.Status, resp.Header.Get("Range"), body)
		}
		loc = reg.location(t, resp)
		resp, body = patch(loc, 2048, 3072)
		if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
			t.Errorf("out-of-order chunk: %s %s, want 416", resp.Status, body)
		}
		resp, body = patch(loc, 0, 1024)
		if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
			t.Errorf("repeated chunk: %s %s, want 416", resp.Status, body)
		}
		resp, _ = reg.do(t, http.MethodGet, loc, nil)
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Range") != "0-1023" {
			t.Fatalf("upload status after refused chunks: %s, Range %q; want 204, 0-1023", resp.Status, resp.Header.Get("Range"))
		}
		resp, body = patch(loc, 1024, 3072)
		if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Range") != "0-3071" {
			t.Fatalf("second chunk: %s, Range %q; %s", resp.Status, resp.Header.Get("Range"), body)
		}
		loc = reg.location(t, resp)
		// The last chunk comes with the closing PUT.
		resp, body = reg.do(t, http.MethodPut, withDigest(t, loc, d), data[3072:], "Content-Type", "application/octet-stream",
			"Content-Range", fmt.Sprintf("3072-%d", len(data)-1))
		if resp.StatusCode != http.StatusCreated || resp.Header.Get("Docker-Content-Digest") != d {
			t.Fatalf("closing PUT: %s, Docker-Content-Digest %q; %s", resp.Status, resp.Header.Get("Docker-Content-Digest"), body)
		}
		resp, body = reg.do(t, http.MethodGet, reg.location(t, resp), nil)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
			t.Fatalf("GET the Location of the finished upload: %s, %d bytes (want %d)", resp.Status, len(body), len(data))
		}
		if apiCount(t, srv, "artifacts/?sha256="+strings.TrimPrefix(d, "sha256:")) != 1 {
			t.Errorf("no artifact for the chunked blob %s", d)
		}
	})

	t.Run("cross-repository mount", func(t *testing.T) {
		data := randomBytes(t, 2000)
		d := reg.pushBlob(t, "e2e/mount-src", data)
		resp, body := reg.do(t, http.MethodPost, "/v2/e2e/mount-dst/blobs/uploads/?mount="+url.QueryEscape(d)+"&from=e2e/mount-src", nil)
		if resp.StatusCode != http.StatusCreated || resp.Header.Get("Docker-Content-Digest") != d {
			t.Fatalf("mount: %s, Docker-Content-Digest %q; %s", resp.Status, resp.Header.Get("Docker-Content-Digest"), body)
		}
		resp, body = reg.do(t, http.MethodGet, reg.location(t, resp), nil)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
			t.Errorf("GET the mounted blob: %s, %d bytes", resp.Status, len(body))
		}
		// A blob the source does not hold is no mount: the client gets an
		// upload session instead.
		missing := sha256Digest(randomBytes(t, 10))
		resp, body = reg.do(t, http.MethodPost, "/v2/e2e/mount-dst/blobs/uploads/?mount="+url.QueryEscape(missing)+"&from=e2e/mount-src", nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Errorf("mount of a missing blob: %s %s, want 202 and a session", resp.Status, body)
		} else {
			reg.location(t, resp)
		}
		if resp, _ := reg.do(t, http.MethodHead, "/v2/e2e/mount-dst/blobs/"+missing, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("HEAD of the missing blob after a failed mount: %s", resp.Status)
		}
	})

	t.Run("manifest DELETE by digest", func(t *testing.T) {
		keep, gone := randomImage(t, 1, true), randomImage(t, 1, true)
		if err := remote.Write(reg.ref(t, "e2e/del:keep"), keep, regAuth); err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(reg.ref(t, "e2e/del:gone"), gone, regAuth); err != nil {
			t.Fatal(err)
		}
		before := pushRepo(t, srv, "e2e/del")
		d := mustDigest(t, gone)
		resp, body := reg.do(t, http.MethodDelete, "/v2/e2e/del/manifests/"+d, nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("DELETE manifest: %s %s, want 202", resp.Status, body)
		}
		resp, body = reg.do(t, http.MethodGet, "/v2/e2e/del/manifests/"+d, nil)
		ociError(t, "GET of the deleted manifest", resp, body, http.StatusNotFound, "MANIFEST_UNKNOWN")
		resp, body = reg.do(t, http.MethodGet, "/v2/e2e/del/manifests/gone", nil)
		ociError(t, "GET of the deleted manifest's tag", resp, body, http.StatusNotFound, "MANIFEST_UNKNOWN")
		if got := pagedList(t, reg, "/v2/e2e/del/tags/list", "tags", 0); !slices.Equal(got, []string{"keep"}) {
			t.Errorf("tags after the delete: %v", got)
		}
		after := pushRepo(t, srv, "e2e/del")
		if after.version != before.version+1 {
			t.Errorf("delete: version %d after %d, want a new one", after.version, before.version)
		}
		if got := versionContent(t, srv, "manifests", after.latest, "digest"); !slices.Equal(got, []string{mustDigest(t, keep)}) {
			t.Errorf("manifests in %s: %v, want only %s", after.latest, got, mustDigest(t, keep))
		}
		checkImage(t, reg.ref(t, "e2e/del:keep"), keep)
		resp, body = reg.do(t, http.MethodDelete, "/v2/e2e/del/manifests/"+d, nil)
		ociError(t, "DELETE of a deleted manifest", resp, body, http.StatusNotFound, "MANIFEST_UNKNOWN")
	})
}

// pagedList GETs a tags/list or _catalog path, following Link rel="next"
// headers, and returns the concatenated member values. With pageSize > 0
// every page but the last must be full and carry a Link.
func pagedList(t *testing.T, reg v2, path, member string, pageSize int) []string {
	t.Helper()
	var all []string
	for pages := 0; path != ""; pages++ {
		if pages > 100 {
			t.Fatalf("%s: more than 100 pages", path)
		}
		resp, body := reg.do(t, http.MethodGet, path, nil)
		var page map[string]any
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &page) != nil {
			t.Fatalf("GET %s: %s %s", path, resp.Status, truncated(body))
		}
		items, _ := page[member].([]any)
		for _, it := range items {
			all = append(all, it.(string))
		}
		next := nextLink(t, resp)
		if pageSize > 0 && (len(items) > pageSize || next != "" && len(items) != pageSize) {
			t.Errorf("GET %s: %d items with n=%d, next %q", path, len(items), pageSize, next)
		}
		path = next
	}
	return all
}

var linkNext = regexp.MustCompile(`<([^>]+)>\s*;\s*rel="?next"?`)

// nextLink is the target of a response's Link rel="next", resolved against
// its URL, or "".
func nextLink(t *testing.T, resp *http.Response) string {
	t.Helper()
	m := linkNext.FindStringSubmatch(resp.Header.Get("Link"))
	if m == nil {
		return ""
	}
	u, err := resp.Request.URL.Parse(m[1])
	if err != nil {
		t.Fatalf("Link %q: %v", resp.Header.Get("Link"), err)
	}
	return u.String()
}

// TestRegistryBadInput sends what a registry must refuse and checks the
// OCI error and that nothing was kept: no new repository version, no
// manifest unit, no artifact.
func TestRegistryBadInput(t *testing.T) {
	t.Parallel()
	srv := harness.Start(t, harness.Options{})
	reg := newV2(srv)
	const repo = "e2e/bad"

	// A valid image first, so that the push repository exists.
	cfg := imageConfig(t)
	layer := randomBytes(t, 1500)
	reg.pushBlob(t, repo, cfg)
	reg.pushBlob(t, repo, layer)
	good := imageManifest(cfg, layer)
	if resp, body := reg.putManifest(t, repo, "good", good, ociManifestType); resp.StatusCode != http.StatusCreated {
		t.Fatalf("valid manifest: %s %s", resp.Status, body)
	}
	before := pushRepo(t, srv, repo)
	artifacts := apiCount(t, srv, "artifacts/")
	// unchanged checks the state after each refusal (and takes a changed
	// one as the new baseline, so that each subtest reports its own leaks).
	unchanged := func(t *testing.T, shas ...string) {
		t.Helper()
		if now := pushRepo(t, srv, repo); now != before {
			t.Errorf("push repository changed: %+v, was %+v", now, before)
			before = now
		}
		if n := apiCount(t, srv, "artifacts/"); n != artifacts {
			t.Errorf("%d artifacts, was %d", n, artifacts)
			artifacts = n
		}
		for _, d := range shas {
			if n := apiCount(t, srv, "artifacts/?sha256="+strings.TrimPrefix(d, "sha256:")); n != 0 {
				t.Errorf("artifact %s kept", d)
			}
			if n := apiCount(t, srv, "content/container/manifests/?digest="+url.QueryEscape(d)); n != 0 {
				t.Errorf("manifest unit %s kept", d)
			}
			if n := apiCount(t, srv, "content/container/blobs/?digest="+url.QueryEscape(d)); n != 0 {
				t.Errorf("blob unit %s kept", d)
			}
		}
	}

	t.Run("manifest digest does not match the reference", func(t *testing.T) {
		other := imageManifest(cfg) // valid, no layers
		wrong := sha256Digest(good)
		resp, body := reg.putManifest(t, repo, wrong, other, ociManifestType)
		ociError(t, "PUT manifest under another digest", resp, body, http.StatusBadRequest, "DIGEST_INVALID", "MANIFEST_INVALID")
		unchanged(t, sha256Digest(other))
	})

	t.Run("blob digest does not match", func(t *testing.T) {
		data := randomBytes(t, 1000)
		wrong := sha256Digest([]byte("something else"))
		resp, body := reg.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+url.QueryEscape(wrong), data, "Content-Type", "application/octet-stream")
		ociError(t, "monolithic POST with a wrong digest", resp, body, http.StatusBadRequest, "DIGEST_INVALID")
		resp, body = reg.do(t, http.MethodPut, withDigest(t, reg.startUpload(t, repo), wrong), data, "Content-Type", "application/octet-stream")
		ociError(t, "PUT with a wrong digest", resp, body, http.StatusBadRequest, "DIGEST_INVALID")
		for _, d := range []string{wrong, sha256Digest(data)} {
			if resp, _ := reg.do(t, http.MethodHead, "/v2/"+repo+"/blobs/"+d, nil); resp.StatusCode != http.StatusNotFound {
				t.Errorf("HEAD blob %s after a refused upload: %s", d, resp.Status)
			}
		}
		unchanged(t, sha256Digest(data), wrong)
	})

	t.Run("manifest references a missing blob", func(t *testing.T) {
		missing := randomBytes(t, 700)
		m := imageManifest(cfg, layer, missing)
		resp, body := reg.putManifest(t, repo, "missing", m, ociManifestType)
		ociError(t, "manifest with a missing layer", resp, body, http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN")
		m = imageManifest(randomBytes(t, 50), layer)
		resp, body = reg.putManifest(t, repo, "missing", m, ociManifestType)
		ociError(t, "manifest with a missing config", resp, body, http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN")
		idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": string(types.OCIImageIndex),
			"manifests": []any{map[string]any{"mediaType": ociManifestType, "digest": sha256Digest(missing), "size": 700}}})
		resp, body = reg.putManifest(t, repo, "missing", idx, string(types.OCIImageIndex))
		ociError(t, "index of a missing manifest", resp, body, http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN")
		unchanged(t, sha256Digest(m), sha256Digest(idx), sha256Digest(missing))
		resp, body = reg.do(t, http.MethodGet, "/v2/"+repo+"/manifests/missing", nil)
		ociError(t, "GET of the refused tag", resp, body, http.StatusNotFound, "MANIFEST_UNKNOWN")
	})

	t.Run("manifest over 4 MiB", func(t *testing.T) {
		var m map[string]any
		json.Unmarshal(good, &m)
		m["annotations"] = map[string]string{"pad": strings.Repeat("x", 4<<20)}
		big, _ := json.Marshal(m)
		resp, body := reg.putManifest(t, repo, "big", big, ociManifestType)
		ociError(t, "5 MiB manifest", resp, body, http.StatusRequestEntityTooLarge, "SIZE_INVALID", "MANIFEST_INVALID")
		unchanged(t, sha256Digest(big))
	})

	t.Run("invalid name and tag", func(t *testing.T) {
		for _, n := range []string{"E2E/Upper", "e2e/bad!", "-e2e/lead"} {
			resp, body := reg.putManifest(t, n, "v1", good, ociManifestType)
			ociError(t, "PUT manifest to name "+n, resp, body, http.StatusBadRequest, "NAME_INVALID")
			resp, body = reg.do(t, http.MethodPost, "/v2/"+n+"/blobs/uploads/", nil)
			ociError(t, "upload to name "+n, resp, body, http.StatusBadRequest, "NAME_INVALID")
		}
		for _, tag := range []string{"-lead", ".dot", strings.Repeat("t", 129)} {
			resp, body := reg.putManifest(t, repo, tag, good, ociManifestType)
			ociError(t, "PUT manifest as tag "+tag, resp, body, http.StatusBadRequest, "TAG_INVALID", "MANIFEST_INVALID")
		}
		if n := apiCount(t, srv, "repositories/"); n != 1 {
			t.Errorf("%d repositories after invalid names, want the 1 of %s", n, repo)
		}
		unchanged(t)
	})

	t.Run("unknown manifest media type", func(t *testing.T) {
		var m map[string]any
		json.Unmarshal(imageManifest(cfg, layer), &m)
		m["mediaType"] = "application/vnd.example.unknown.v1+json"
		raw, _ := json.Marshal(m)
		resp, body := reg.putManifest(t, repo, "odd", raw, "application/vnd.example.unknown.v1+json")
		ociError(t, "unknown media type", resp, body, http.StatusBadRequest, "MANIFEST_INVALID")
		resp, body = reg.putManifest(t, repo, "odd", []byte(`{"schemaVersion":2,`), ociManifestType)
		ociError(t, "truncated JSON", resp, body, http.StatusBadRequest, "MANIFEST_INVALID")
		unchanged(t, sha256Digest(raw))
	})

	t.Run("client aborts an upload halfway", func(t *testing.T) {
		data := randomBytes(t, 256<<10)
		d := sha256Digest(data)
		half := len(data) / 2

		// Resumable: the session reports what it kept, and the client
		// finishes it with a short tail, so that bytes of the broken body
		// left past the end would show in the blob.
		loc := reg.startUpload(t, repo)
		abortPatch(t, loc, data, half)
		if resp, _ := reg.do(t, http.MethodHead, "/v2/"+repo+"/blobs/"+d, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("HEAD blob after an aborted upload: %s", resp.Status)
		}
		unchanged(t, d, sha256Digest(data[:half]))
		final := data
		resp, _ := reg.do(t, http.MethodGet, loc, nil)
		switch resp.StatusCode {
		case http.StatusNoContent:
			kept := 0
			if r := resp.Header.Get("Range"); r != "" && r != "0-0" {
				end, err := strconv.Atoi(strings.TrimPrefix(r, "0-"))
				if err != nil || end+1 > half {
					t.Fatalf("Range %q after sending %d bytes", r, half)
				}
				kept = end + 1
			}
			tail := randomBytes(t, 1000)
			final = append(slices.Clone(data[:kept]), tail...)
			resp, body := reg.do(t, http.MethodPatch, loc, tail, "Content-Type", "application/octet-stream",
				"Content-Range", fmt.Sprintf("%d-%d", kept, len(final)-1))
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("resume at %d: %s %s", kept, resp.Status, body)
			}
			resp, body = reg.do(t, http.MethodPut, withDigest(t, reg.location(t, resp), sha256Digest(final)), nil)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("finish the resumed upload: %s %s", resp.Status, body)
			}
		case http.StatusNotFound:
			// The server dropped the session: a new upload must work.
			reg.pushBlob(t, repo, data)
		default:
			t.Fatalf("upload status after an abort: %s", resp.Status)
		}
		resp, body := reg.do(t, http.MethodGet, "/v2/"+repo+"/blobs/"+sha256Digest(final), nil)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, final) {
			t.Fatalf("blob after the resumed upload: %s, %d bytes, want %d", resp.Status, len(body), len(final))
		}
		arts := srv.JSON(t, http.MethodGet, "artifacts/?sha256="+strings.TrimPrefix(sha256Digest(final), "sha256:"), nil, http.StatusOK)
		if arts["count"] != float64(1) || arts["results"].([]any)[0].(map[string]any)["size"] != float64(len(final)) {
			t.Fatalf("artifact of the resumed upload: %v, want one of %d bytes", arts["results"], len(final))
		}

		// Abandoned: DELETE cleans the session.
		other := randomBytes(t, 256<<10)
		loc = reg.startUpload(t, repo)
		abortPatch(t, loc, other, len(other)/2)
		resp, body = reg.do(t, http.MethodDelete, loc, nil)
		if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotFound {
			t.Errorf("DELETE the aborted session: %s %s", resp.Status, body)
		}
		resp, body = reg.do(t, http.MethodGet, loc, nil)
		ociError(t, "status of a deleted session", resp, body, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		resp, body = reg.do(t, http.MethodPut, withDigest(t, loc, sha256Digest(other)), other)
		ociError(t, "PUT to a deleted session", resp, body, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		if n := apiCount(t, srv, "artifacts/?sha256="+strings.TrimPrefix(sha256Digest(other), "sha256:")); n != 0 {
			t.Errorf("artifact of the abandoned upload kept")
		}
	})
}

// abortPatch sends a PATCH announcing all of data but writes only n bytes,
// then closes the connection, as a client killed mid-upload does, and
// waits until the server has noticed (a status GET answers).
func abortPatch(t *testing.T, loc string, data []byte, n int) {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", u.RequestURI(), u.Host, len(data))
	conn.Write(data[:n])
	time.Sleep(100 * time.Millisecond) // let the server start reading
	conn.Close()
	time.Sleep(200 * time.Millisecond) // and see the end of the connection
}

// TestRegistryServesSyncedRepository syncs from an upstream registry,
// distributes the repository and pulls it through pulpo's /v2/ as crane
// would: the same digests as upstream, byte for byte.
func TestRegistryServesSyncedRepository(t *testing.T) {
	t.Parallel()
	up := newOCIRegistry(t)
	app := newPushed()
	v1img := up.pushImage(t, app, "test/app", "v1", 2, false)
	v2img := up.pushImage(t, app, "test/app", "v2", 1, true)
	index, arm := up.pushIndex(t, app, "test/app", "multi")
	artifact := up.pushArtifact(t, app, "test/app", "artifact")

	srv := harness.Start(t, harness.Options{})
	reg := newV2(srv)
	for _, policy := range []string{"immediate", "on_demand"} {
		t.Run(policy, func(t *testing.T) {
			rm := srv.JSON(t, http.MethodPost, "remotes/container/container/", map[string]any{"name": "up-" + policy, "url": up.srv.URL,
				"policy": policy, "username": up.user, "password": up.pass, "upstream_name": "test/app"}, http.StatusCreated)
			repo := srv.JSON(t, http.MethodPost, "repositories/container/container/", map[string]any{"name": "mirror-" + policy,
				"remote": rm["pulp_href"]}, http.StatusCreated)
			rh := repo["pulp_href"].(string)
			srv.RunTask(t, http.MethodPost, rh+"sync/", map[string]any{})
			base := "mirror/" + strings.ReplaceAll(policy, "_", "-")
			srv.RunTask(t, http.MethodPost, "distributions/container/container/", map[string]any{"name": base, "base_path": base, "repository": rh})

			checkImage(t, reg.ref(t, base+":v1"), v1img)
			checkImage(t, reg.ref(t, base+":v2"), v2img)
			for tag, d := range app.tags {
				desc, err := remote.Get(reg.ref(t, base+":"+tag), regAuth)
				if err != nil {
					t.Fatalf("get %s:%s: %v", base, tag, err)
				}
				if desc.Digest.String() != d || !bytes.Equal(desc.Manifest, app.manifests[d]) {
					t.Errorf("%s:%s is %s, upstream %s", base, tag, desc.Digest, d)
				}
			}
			idx, err := remote.Index(reg.ref(t, base+"@"+index), regAuth)
			if err != nil || mustDigest(t, idx) != index {
				t.Fatalf("index %s: %v", index, err)
			}
			if desc, err := remote.Get(reg.ref(t, base+"@"+arm), regAuth); err != nil || desc.Digest.String() != arm {
				t.Errorf("index child %s: %v", arm, err)
			}
			if desc, err := remote.Get(reg.ref(t, base+"@"+artifact), regAuth); err != nil || !bytes.Equal(desc.Manifest, app.manifests[artifact]) {
				t.Errorf("artifact %s: %v", artifact, err)
			}
			tags := pagedList(t, reg, "/v2/"+base+"/tags/list", "tags", 0)
			if want := []string{"artifact", "multi", "v1", "v2"}; !slices.Equal(tags, want) {
				t.Errorf("tags/list %v, want %v", tags, want)
			}
			// A synced repository is not a push target.
			img := randomImage(t, 1, true)
			if err := remote.Write(reg.ref(t, base+":pushed"), img, regAuth); err == nil {
				t.Errorf("push into the distribution of a synced repository was accepted")
			}
			if r := srv.JSON(t, http.MethodGet, rh, nil, http.StatusOK); r["latest_version_href"] != rh+"versions/1/" {
				t.Errorf("synced repository now at %v", r["latest_version_href"])
			}
		})
	}
}
