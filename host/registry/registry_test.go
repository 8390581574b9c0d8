package registry

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestPathParsing(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]route{
		"a/manifests/latest":                  {name: "a", kind: kindManifest, ref: "latest"},
		"a/b/c/manifests/sha256:x":            {name: "a/b/c", kind: kindManifest, ref: "sha256:x"},
		"a/manifests/manifests/v1":            {name: "a/manifests", kind: kindManifest, ref: "v1"},
		"lib/blobs/sha256:x":                  {name: "lib", kind: kindBlob, ref: "sha256:x"},
		"lib/x/blobs/uploads/":                {name: "lib/x", kind: kindUpload},
		"lib/x/blobs/uploads/0b0e":            {name: "lib/x", kind: kindUpload, ref: "0b0e"},
		"tags/tags/list":                      {name: "tags", kind: kindTags},
		"a/referrers/sha256:x":                {name: "a", kind: kindReferrers, ref: "sha256:x"},
		"blobs/blobs/uploads/blobs/uploads/u": {name: "blobs/blobs/uploads", kind: kindUpload, ref: "u"},
	} {
		got, ok := parsePath(in)
		if !ok || got != want {
			t.Errorf("parsePath(%q) = %+v %v, want %+v", in, got, ok, want)
		}
	}
	for _, bad := range []string{"a", "a/b", "a/tags", "a/other/x"} {
		if _, ok := parsePath(bad); ok {
			t.Errorf("parsePath(%q) ok", bad)
		}
	}
}

func TestBaseAndErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do("GET", "/v2/", nil)
	e.expect(r, http.StatusOK, "")
	if r.header.Get("Docker-Distribution-API-Version") != "registry/2.0" || string(r.body) != "{}" {
		t.Errorf("GET /v2/: %v %s", r.header, r.body)
	}
	e.expect(e.do("GET", "/v2/Bad_Name/manifests/latest", nil), http.StatusBadRequest, codeNameInvalid)
	e.expect(e.do("GET", "/v2/ok/manifests/-bad", nil), http.StatusBadRequest, codeTagInvalid)
	e.expect(e.do("GET", "/v2/ok/manifests/sha256:totallywrong", nil), http.StatusBadRequest, codeDigestInvalid)
	e.expect(e.do("GET", "/v2/missing/manifests/latest", nil), http.StatusNotFound, codeNameUnknown)
	e.expect(e.do("GET", "/v2/missing/blobs/"+digestOf([]byte("x")), nil), http.StatusNotFound, codeNameUnknown)
	e.expect(e.do("GET", "/v2/missing/tags", nil), http.StatusNotFound, codeNameUnknown)
	e.expect(e.do("POST", "/v2/ok/manifests/latest", nil), http.StatusMethodNotAllowed, codeUnsupported)
	if r := e.do("HEAD", "/v2/missing/manifests/latest", nil); r.status != http.StatusNotFound || len(r.body) != 0 {
		t.Errorf("HEAD of a missing manifest: %d %q", r.status, r.body)
	}
}

func TestPushPullImage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m, d := e.pushImage("lib/app", "v1", "one")
	if n := e.latest("lib/app"); n != 1 {
		t.Fatalf("latest version %d after one manifest push, want 1", n)
	}
	for _, ref := range []string{"v1", d} {
		r := e.do("GET", "/v2/lib/app/manifests/"+ref, nil, "Accept", mediaOCIManifest+", application/vnd.docker.distribution.manifest.v2+json")
		e.expect(r, http.StatusOK, "")
		if !bytes.Equal(r.body, m) || r.header.Get("Content-Type") != mediaOCIManifest ||
			r.header.Get("Docker-Content-Digest") != d || r.header.Get("Content-Length") != fmt.Sprint(len(m)) {
			t.Errorf("GET manifest %s: %v %s", ref, r.header, r.body)
		}
		h := e.do("HEAD", "/v2/lib/app/manifests/"+ref, nil)
		if h.status != http.StatusOK || len(h.body) != 0 || h.header.Get("Docker-Content-Digest") != d ||
			h.header.Get("Content-Length") != fmt.Sprint(len(m)) {
			t.Errorf("HEAD manifest %s: %d %v", ref, h.status, h.header)
		}
	}
	// A client accepting only Docker list types gets no OCI manifest by tag.
	e.expect(e.do("GET", "/v2/lib/app/manifests/v1", nil, "Accept", "application/vnd.docker.distribution.manifest.list.v2+json"),
		http.StatusNotFound, codeManifestUnknown)

	// Re-tagging moves the tag: one tag v1 in the new version, pointing at the new image.
	m2, d2 := e.pushImage("lib/app", "v1", "two")
	r := e.do("GET", "/v2/lib/app/manifests/v1", nil)
	if !bytes.Equal(r.body, m2) || r.header.Get("Docker-Content-Digest") != d2 {
		t.Errorf("v1 after re-tag: %s", r.body)
	}
	e.expect(e.do("GET", "/v2/lib/app/manifests/"+d, nil), http.StatusOK, "") // still in the repository
	e.pushImage("lib/app", "v2", "three")
	r = e.do("GET", "/v2/lib/app/tags/list", nil)
	if string(r.body) != `{"name":"lib/app","tags":["v1","v2"]}` {
		t.Errorf("tags: %s", r.body)
	}
	r = e.do("GET", "/v2/lib/app/tags/list?n=1", nil)
	if string(r.body) != `{"name":"lib/app","tags":["v1"]}` || r.header.Get("Link") != `</v2/lib/app/tags/list?last=v1&n=1>; rel="next"` {
		t.Errorf("tags page 1: %s %q", r.body, r.header.Get("Link"))
	}
	r = e.do("GET", "/v2/lib/app/tags/list?n=1&last=v1", nil)
	if string(r.body) != `{"name":"lib/app","tags":["v2"]}` {
		t.Errorf("tags page 2: %s", r.body)
	}
	e.expect(e.do("GET", "/v2/lib/app/tags/list?n=-1", nil), http.StatusBadRequest, codeUnsupported)

	e.pushImage("other", "latest", "four")
	r = e.do("GET", "/v2/_catalog", nil)
	if string(r.body) != `{"repositories":["lib/app","other"]}` {
		t.Errorf("catalog: %s", r.body)
	}
	r = e.do("GET", "/v2/_catalog?n=1&last=lib/app", nil)
	if string(r.body) != `{"repositories":["other"]}` || r.header.Get("Link") == "" {
		t.Errorf("catalog page: %s %q", r.body, r.header.Get("Link"))
	}
	// The push made a push repository and a distribution named after the path.
	if n := e.count(`SELECT count(*) FROM distributions d JOIN repositories r ON r.id = d.repository_id
		WHERE d.base_path = 'lib/app' AND d.pulp_type = 'container.container' AND r.pulp_type = 'container.container_push'`); n != 1 {
		t.Errorf("%d push distributions for lib/app", n)
	}
}

func TestBlobUploads(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	blob := bytes.Repeat([]byte("0123456789"), 1000)
	d := digestOf(blob)

	r := e.do("POST", "/v2/up/blobs/uploads/", nil)
	e.expect(r, http.StatusAccepted, "")
	loc := r.header.Get("Location")
	if !strings.HasPrefix(loc, "/v2/up/blobs/uploads/") || r.header.Get("Range") != "0-0" || r.header.Get("Docker-Upload-UUID") == "" {
		t.Fatalf("session: %v", r.header)
	}
	// Out of order: 416 with the current range.
	r = e.do("PATCH", loc, blob[10:20], "Content-Range", "10-19")
	e.expect(r, http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid)
	if r.header.Get("Range") != "0-0" {
		t.Errorf("416 range %q", r.header.Get("Range"))
	}
	r = e.do("PATCH", loc, blob[:4000], "Content-Range", "0-3999", "Content-Type", "application/octet-stream")
	e.expect(r, http.StatusAccepted, "")
	if r.header.Get("Range") != "0-3999" {
		t.Errorf("after chunk 1: range %q", r.header.Get("Range"))
	}
	// The same chunk again: 416.
	e.expect(e.do("PATCH", loc, blob[:4000], "Content-Range", "0-3999"), http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid)
	// Content-Length not matching the range.
	e.expect(e.do("PATCH", loc, blob[4000:4010], "Content-Range", "4000-4999"), http.StatusBadRequest, codeBlobUploadInvalid)
	r = e.do("GET", loc, nil)
	e.expect(r, http.StatusNoContent, "")
	if r.header.Get("Range") != "0-3999" || r.header.Get("Location") != loc {
		t.Errorf("status: %v", r.header)
	}
	// A streamed PATCH without Content-Range, then the last bytes with the PUT.
	e.expect(e.do("PATCH", loc, blob[4000:9000]), http.StatusAccepted, "")
	r = e.do("PUT", loc+"?digest="+d, blob[9000:])
	e.expect(r, http.StatusCreated, "")
	if r.header.Get("Location") != "/v2/up/blobs/"+d || r.header.Get("Docker-Content-Digest") != d {
		t.Errorf("finish: %v", r.header)
	}
	e.expect(e.do("GET", loc, nil), http.StatusNotFound, codeBlobUploadUnknown)
	r = e.do("GET", "/v2/up/blobs/"+d, nil)
	if r.status != http.StatusOK || !bytes.Equal(r.body, blob) || r.header.Get("Docker-Content-Digest") != d {
		t.Fatalf("GET blob: %d %d bytes", r.status, len(r.body))
	}
	r = e.do("GET", "/v2/up/blobs/"+d, nil, "Range", "bytes=10-19")
	if r.status != http.StatusPartialContent || string(r.body) != "0123456789" {
		t.Errorf("range: %d %q", r.status, r.body)
	}
	e.expect(e.do("GET", "/v2/up/blobs/"+d, nil, "Range", "bytes=20000-"), http.StatusRequestedRangeNotSatisfiable, codeRangeInvalid)
	if h := e.do("HEAD", "/v2/up/blobs/"+d, nil); h.status != http.StatusOK || h.header.Get("Content-Length") != "10000" {
		t.Errorf("HEAD blob: %d %v", h.status, h.header)
	}

	// A digest mismatch keeps nothing: no artifact, no unit, no session.
	arts := e.count(`SELECT count(*) FROM artifacts`)
	r = e.do("POST", "/v2/up/blobs/uploads/", nil)
	loc = r.header.Get("Location")
	e.expect(e.do("PATCH", loc, []byte("some bytes")), http.StatusAccepted, "")
	e.expect(e.do("PUT", loc+"?digest="+digestOf([]byte("other bytes")), nil), http.StatusBadRequest, codeDigestInvalid)
	e.expect(e.do("GET", loc, nil), http.StatusNotFound, codeBlobUploadUnknown)
	e.expect(e.do("POST", "/v2/up/blobs/uploads/?digest="+digestOf([]byte("x")), []byte("y")), http.StatusBadRequest, codeDigestInvalid)
	if n := e.count(`SELECT count(*) FROM artifacts`); n != arts {
		t.Errorf("%d artifacts after rejected uploads, want %d", n, arts)
	}
	if n := e.count(`SELECT count(*) FROM registry_uploads`); n != 0 {
		t.Errorf("%d sessions left", n)
	}
	entries, _ := os.ReadDir(e.h.d.UploadDir)
	if len(entries) != 0 {
		t.Errorf("upload files left: %v", entries)
	}
	e.expect(e.do("PUT", "/v2/up/blobs/uploads/not-a-uuid?digest="+d, nil), http.StatusNotFound, codeBlobUploadUnknown)
	e.expect(e.do("PUT", loc+"?digest=md5:abc", nil), http.StatusBadRequest, codeDigestInvalid)

	// DELETE of a session.
	r = e.do("POST", "/v2/up/blobs/uploads/", nil)
	loc = r.header.Get("Location")
	e.expect(e.do("DELETE", loc, nil), http.StatusNoContent, "")
	e.expect(e.do("DELETE", loc, nil), http.StatusNotFound, codeBlobUploadUnknown)
	// A session is bound to its name.
	r = e.do("POST", "/v2/up/blobs/uploads/", nil)
	other := strings.Replace(r.header.Get("Location"), "/v2/up/", "/v2/other/", 1)
	e.expect(e.do("PATCH", other, []byte("x")), http.StatusNotFound, codeBlobUploadUnknown)
}

// A client that breaks off mid-PATCH leaves the session as it was, and no artifact.
func TestAbortedUpload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do("POST", "/v2/ab/blobs/uploads/", nil)
	loc := r.header.Get("Location")
	e.expect(e.do("PATCH", loc, []byte("hello "), "Content-Range", "0-5"), http.StatusAccepted, "")
	arts := e.count(`SELECT count(*) FROM artifacts`)
	// Announce 1 MiB, send 100 KiB, hang up.
	req, _ := http.NewRequest("PATCH", e.srv.URL+loc, &breaking{n: 100 << 10})
	req.Header.Set("Content-Range", fmt.Sprintf("6-%d", 6+(1<<20)-1))
	req.ContentLength = 1 << 20
	if resp, err := e.client.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Fatalf("aborted PATCH answered %d", resp.StatusCode)
		}
	}
	e.eventually("session unlocked", func() bool {
		r := e.do("GET", loc, nil)
		return r.status == http.StatusNoContent && r.header.Get("Range") == "0-5"
	})
	e.expect(e.do("PATCH", loc, []byte("world"), "Content-Range", "6-10"), http.StatusAccepted, "")
	whole := []byte("hello world")
	e.expect(e.do("PUT", loc+"?digest="+digestOf(whole), nil), http.StatusCreated, "")
	if n := e.count(`SELECT count(*) FROM artifacts`); n != arts+1 {
		t.Errorf("%d artifacts, want %d", n, arts+1)
	}
	r = e.do("GET", "/v2/ab/blobs/"+digestOf(whole), nil)
	if !bytes.Equal(r.body, whole) {
		t.Errorf("blob %q", r.body)
	}
}

// TestUploadLostBytes: a session whose file lost bytes its row records (a crash
// before they reached the disk) is ended, not padded with zeros that would then be
// stored under the digest of the bytes that were sent.
func TestUploadLostBytes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do("POST", "/v2/lost/blobs/uploads/", nil)
	loc := r.header.Get("Location")
	e.expect(e.do("PATCH", loc, []byte("hello "), "Content-Range", "0-5"), http.StatusAccepted, "")
	id := r.header.Get("Docker-Upload-UUID")
	if err := os.Truncate(filepath.Join(e.h.d.UploadDir, id), 3); err != nil {
		t.Fatal(err)
	}
	e.expect(e.do("PATCH", loc, []byte("world"), "Content-Range", "6-10"), http.StatusNotFound, codeBlobUploadUnknown)
	e.expect(e.do("GET", loc, nil), http.StatusNotFound, codeBlobUploadUnknown)
	if _, err := os.Stat(filepath.Join(e.h.d.UploadDir, id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("upload file kept: %v", err)
	}
	if n := e.count(`SELECT count(*) FROM registry_uploads WHERE id = '` + id + `'`); n != 0 {
		t.Errorf("%d session rows left", n)
	}
}

// breaking is a body that fails after n bytes.
type breaking struct{ n int }

func (b *breaking) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, fmt.Errorf("client gone")
	}
	k := min(len(p), b.n)
	for i := range p[:k] {
		p[i] = 'x'
	}
	b.n -= k
	return k, nil
}

func TestManifestPushRejects(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := e.pushBlob("rej", []byte(`{}`))
	layer := e.pushBlob("rej", []byte("layer"))
	missing := digestOf([]byte("never pushed"))
	versions := e.latest("rej")
	put := func(ref string, body []byte, ct string) response {
		return e.do("PUT", "/v2/rej/manifests/"+ref, body, "Content-Type", ct)
	}
	e.expect(put("v1", image(cfg, layer, missing), mediaOCIManifest), http.StatusBadRequest, codeManifestBlobUnknown)
	e.expect(put("v1", image(missing, layer), mediaOCIManifest), http.StatusBadRequest, codeManifestBlobUnknown)
	index := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + missing + `","size":5}]}`)
	e.expect(put("v1", index, "application/vnd.oci.image.index.v1+json"), http.StatusBadRequest, codeManifestBlobUnknown)
	m := image(cfg, layer)
	e.expect(put(digestOf([]byte("other")), m, mediaOCIManifest), http.StatusBadRequest, codeDigestInvalid)
	e.expect(put("v1", []byte(`{"schemaVersion":2,"mediaType":"application/x-unknown"}`), "application/x-unknown"),
		http.StatusBadRequest, codeManifestInvalid)
	e.expect(put("v1", []byte(`{"schemaVersion":`), mediaOCIManifest), http.StatusBadRequest, codeManifestInvalid)
	big := append(bytes.Repeat([]byte(" "), maxManifestBytes), m...)
	e.expect(put("v1", big, mediaOCIManifest), http.StatusRequestEntityTooLarge, codeSizeInvalid)
	e.expect(put("bad tag", m, mediaOCIManifest), http.StatusBadRequest, codeTagInvalid)
	e.expect(e.do("PUT", "/v2/Bad/manifests/v1", m), http.StatusBadRequest, codeNameInvalid)
	if n := e.latest("rej"); n != versions {
		t.Errorf("rejected pushes made versions: %d, want %d", n, versions)
	}
	if n := e.count(`SELECT count(*) FROM contents WHERE pulp_type = 'container.manifest'`); n != 0 {
		t.Errorf("%d manifests stored by rejected pushes", n)
	}
	// By digest, then an index listing it, tagged.
	d := digestOf(m)
	r := put(d, m, mediaOCIManifest)
	e.expect(r, http.StatusCreated, "")
	if r.header.Get("Location") != "/v2/rej/manifests/"+d {
		t.Errorf("location %q", r.header.Get("Location"))
	}
	index = []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + d + `","size":` + fmt.Sprint(len(m)) +
		`,"platform":{"architecture":"amd64","os":"linux"}}]}`)
	e.expect(put("multi", index, "application/vnd.oci.image.index.v1+json"), http.StatusCreated, "")
	r = e.do("GET", "/v2/rej/manifests/multi", nil)
	if !bytes.Equal(r.body, index) || r.header.Get("Content-Type") != "application/vnd.oci.image.index.v1+json" {
		t.Errorf("index: %v %s", r.header, r.body)
	}
	if n := e.count(`SELECT count(*) FROM content_relations WHERE name = 'listed_manifests' AND fields->>'architecture' = 'amd64'`); n != 1 {
		t.Errorf("%d listed_manifests relations with platform", n)
	}
}

func TestDeleteAndMount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m, d := e.pushImage("src", "v1", "a")
	cfgDigest := func() string {
		var mf struct{ Config struct{ Digest string } }
		_ = json.Unmarshal(m, &mf)
		return mf.Config.Digest
	}()
	// Mount the config into another repository: 201, readable there.
	r := e.do("POST", "/v2/dst/blobs/uploads/?mount="+cfgDigest+"&from=src", nil)
	e.expect(r, http.StatusCreated, "")
	if r.header.Get("Location") != "/v2/dst/blobs/"+cfgDigest {
		t.Errorf("mount location %q", r.header.Get("Location"))
	}
	e.expect(e.do("GET", "/v2/dst/blobs/"+cfgDigest, nil), http.StatusOK, "")
	// A blob the source lacks: a session instead.
	r = e.do("POST", "/v2/dst/blobs/uploads/?mount="+digestOf([]byte("nope"))+"&from=src", nil)
	e.expect(r, http.StatusAccepted, "")

	// Delete by tag, then by digest.
	e.expect(e.do("DELETE", "/v2/src/manifests/v1", nil), http.StatusAccepted, "")
	e.expect(e.do("GET", "/v2/src/manifests/v1", nil), http.StatusNotFound, codeManifestUnknown)
	e.expect(e.do("GET", "/v2/src/manifests/"+d, nil), http.StatusOK, "")
	e.expect(e.do("DELETE", "/v2/src/manifests/"+d, nil), http.StatusAccepted, "")
	e.expect(e.do("GET", "/v2/src/manifests/"+d, nil), http.StatusNotFound, codeManifestUnknown)
	e.expect(e.do("DELETE", "/v2/src/manifests/"+d, nil), http.StatusNotFound, codeManifestUnknown)
	e.expect(e.do("DELETE", "/v2/src/blobs/"+cfgDigest, nil), http.StatusAccepted, "")
	e.expect(e.do("GET", "/v2/src/blobs/"+cfgDigest, nil), http.StatusNotFound, codeBlobUnknown)
	e.expect(e.do("DELETE", "/v2/src/blobs/"+cfgDigest, nil), http.StatusNotFound, codeBlobUnknown)
	// The mounted copy stays.
	e.expect(e.do("GET", "/v2/dst/blobs/"+cfgDigest, nil), http.StatusOK, "")
	// Deleting a tag pointing at a manifest deletes the tag only, in a new version.
	_, d2 := e.pushImage("src", "v2", "b")
	before := e.latest("src")
	e.expect(e.do("DELETE", "/v2/src/manifests/"+d2, nil), http.StatusAccepted, "")
	if e.latest("src") != before+1 {
		t.Errorf("delete made no version")
	}
	r = e.do("GET", "/v2/src/tags/list", nil)
	if string(r.body) != `{"name":"src","tags":[]}` {
		t.Errorf("tags after deleting the tagged manifest: %s", r.body)
	}
}

func TestReferrers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, subject := e.pushImage("ref", "v1", "s")
	empty := e.pushBlob("ref", []byte("{}"))
	art := func(at string) []byte {
		return []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"` + at + `",` +
			`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"` + empty + `","size":2},"layers":[],` +
			`"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + subject + `","size":1},` +
			`"annotations":{"k":"` + at + `"}}`)
	}
	sig, sbom := art("application/vnd.example.sig"), art("application/vnd.example.sbom")
	for _, b := range [][]byte{sig, sbom} {
		r := e.do("PUT", "/v2/ref/manifests/"+digestOf(b), b, "Content-Type", mediaOCIManifest)
		e.expect(r, http.StatusCreated, "")
		if r.header.Get("OCI-Subject") != subject {
			t.Errorf("OCI-Subject %q", r.header.Get("OCI-Subject"))
		}
	}
	var idx struct {
		MediaType string
		Manifests []descriptor
	}
	r := e.do("GET", "/v2/ref/referrers/"+subject, nil)
	e.expect(r, http.StatusOK, "")
	_ = json.Unmarshal(r.body, &idx)
	if r.header.Get("Content-Type") != mediaOCIIndex || len(idx.Manifests) != 2 || idx.Manifests[0].Digest != digestOf(sig) ||
		idx.Manifests[0].Size != int64(len(sig)) || idx.Manifests[0].ArtifactType != "application/vnd.example.sig" ||
		idx.Manifests[0].Annotations["k"] != "application/vnd.example.sig" {
		t.Errorf("referrers: %s", r.body)
	}
	r = e.do("GET", "/v2/ref/referrers/"+subject+"?artifactType=application/vnd.example.sbom", nil)
	idx.Manifests = nil
	_ = json.Unmarshal(r.body, &idx)
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != digestOf(sbom) || r.header.Get("OCI-Filters-Applied") != "artifactType" {
		t.Errorf("filtered referrers: %s", r.body)
	}
	r = e.do("GET", "/v2/ref/referrers/"+digestOf([]byte("nothing")), nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"manifests":[]`) {
		t.Errorf("no referrers: %d %s", r.status, r.body)
	}
	r = e.do("GET", "/v2/never/pushed/referrers/"+subject, nil)
	if r.status != http.StatusOK || r.header.Get("Content-Type") != mediaOCIIndex || !strings.Contains(string(r.body), `"manifests":[]`) {
		t.Errorf("referrers of an unknown name: %d %v %s", r.status, r.header, r.body)
	}
	// An image referring to the subject without artifactType is listed under its config's
	// media type.
	plain := []byte(strings.Replace(string(art("x")), `"artifactType":"x",`, "", 1))
	plain = []byte(strings.Replace(string(plain), "application/vnd.oci.empty.v1+json", "application/vnd.oci.image.config.v1+json", 1))
	e.expect(e.do("PUT", "/v2/ref/manifests/plain", plain, "Content-Type", mediaOCIManifest), http.StatusCreated, "")
	r = e.do("GET", "/v2/ref/referrers/"+subject+"?artifactType=application/vnd.oci.image.config.v1%2Bjson", nil)
	idx.Manifests = nil
	_ = json.Unmarshal(r.body, &idx)
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != digestOf(plain) {
		t.Errorf("referrer by config media type: %s", r.body)
	}
}

func TestSHA512(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	blob := []byte("sha512 layer")
	s := sha512.Sum512(blob)
	bd := "sha512:" + hex.EncodeToString(s[:])
	e.expect(e.do("POST", "/v2/five/blobs/uploads/?digest="+bd, blob), http.StatusCreated, "")
	r := e.do("GET", "/v2/five/blobs/"+bd, nil)
	if !bytes.Equal(r.body, blob) {
		t.Fatalf("sha512 blob: %d %s", r.status, r.body)
	}
	cfg := e.pushBlob("five", []byte("{}"))
	m := image(cfg, bd)
	ms := sha512.Sum512(m)
	md := "sha512:" + hex.EncodeToString(ms[:])
	r = e.do("PUT", "/v2/five/manifests/"+md, m, "Content-Type", mediaOCIManifest)
	e.expect(r, http.StatusCreated, "")
	if r.header.Get("Docker-Content-Digest") != md {
		t.Errorf("digest header %q", r.header.Get("Docker-Content-Digest"))
	}
	r = e.do("GET", "/v2/five/manifests/"+md, nil)
	if !bytes.Equal(r.body, m) || r.header.Get("Docker-Content-Digest") != md {
		t.Errorf("GET by sha512: %d %s", r.status, r.body)
	}
	e.expect(e.do("PUT", "/v2/five/manifests/sha512:"+strings.Repeat("0", 128), m, "Content-Type", mediaOCIManifest),
		http.StatusBadRequest, codeDigestInvalid)
}

func TestUploadExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do("POST", "/v2/exp/blobs/uploads/", nil)
	old := r.header.Get("Location")
	e.expect(e.do("PATCH", old, []byte("abc")), http.StatusAccepted, "")
	r = e.do("POST", "/v2/exp/blobs/uploads/", nil)
	fresh := r.header.Get("Location")
	id := old[strings.LastIndexByte(old, '/')+1:]
	if _, err := e.db.Pool().Exec(e.ctx, `UPDATE registry_uploads SET updated_at = now() - interval '2 days' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	e.h.expireUploads(e.ctx)
	e.expect(e.do("GET", old, nil), http.StatusNotFound, codeBlobUploadUnknown)
	e.expect(e.do("GET", fresh, nil), http.StatusNoContent, "")
	if _, err := os.Stat(e.h.uploadPath(uuid.MustParse(id))); !os.IsNotExist(err) {
		t.Errorf("expired session's file: %v", err)
	}
}

// Concurrent manifest pushes to one repository each get their own version, in turn.
func TestConcurrentPushes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := e.pushBlob("conc", []byte("{}"))
	base := e.latest("conc")
	const n = 6
	errs := make(chan string, n)
	for i := range n {
		go func() {
			layer := e.pushBlob("conc", []byte(fmt.Sprint("layer ", i)))
			m := image(cfg, layer)
			req, _ := http.NewRequest("PUT", e.srv.URL+fmt.Sprintf("/v2/conc/manifests/t%d", i), bytes.NewReader(m))
			req.Header.Set("Content-Type", mediaOCIManifest)
			resp, err := e.client.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				errs <- fmt.Sprintf("status %d: %s", resp.StatusCode, body)
				return
			}
			errs <- ""
		}()
	}
	for range n {
		if msg := <-errs; msg != "" {
			t.Error(msg)
		}
	}
	if got := e.latest("conc"); got != base+n {
		t.Errorf("latest version %d, want %d", got, base+n)
	}
	r := e.do("GET", "/v2/conc/tags/list", nil)
	if string(r.body) != `{"name":"conc","tags":["t0","t1","t2","t3","t4","t5"]}` {
		t.Errorf("tags %s", r.body)
	}
}

// Two processes behind one address share sessions: a chunk may go to either.
func TestSessionAcrossProcesses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	other, err := New(e.h.d)
	if err != nil {
		t.Fatal(err)
	}
	other.Start()
	t.Cleanup(other.Close)
	srv2 := httptest.NewServer(other)
	t.Cleanup(srv2.Close)
	r := e.do("POST", "/v2/two/blobs/uploads/", nil)
	loc := r.header.Get("Location")
	e.expect(e.do("PATCH", loc, []byte("first "), "Content-Range", "0-5"), http.StatusAccepted, "")
	req, _ := http.NewRequest("PATCH", srv2.URL+loc, strings.NewReader("second"))
	req.Header.Set("Content-Range", "6-11")
	resp, err := srv2.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Range") != "0-11" {
		t.Fatalf("PATCH on the other process: %d %v", resp.StatusCode, resp.Header)
	}
	whole := []byte("first second")
	e.expect(e.do("PUT", loc+"?digest="+digestOf(whole), nil), http.StatusCreated, "")
	if r := e.do("GET", "/v2/two/blobs/"+digestOf(whole), nil); !bytes.Equal(r.body, whole) {
		t.Errorf("blob %q", r.body)
	}
}

// A manifest too large to keep in memory is served from storage with its media type.
func TestLargeManifest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := e.pushBlob("large", []byte("{}"))
	m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":2},"layers":[],`+
		`"annotations":{"big":%q}}`, cfg, strings.Repeat("a", maxCachedManifest)))
	e.expect(e.do("PUT", "/v2/large/manifests/big", m, "Content-Type", mediaOCIManifest), http.StatusCreated, "")
	for _, ref := range []string{"big", digestOf(m)} {
		r := e.do("GET", "/v2/large/manifests/"+ref, nil)
		if r.status != http.StatusOK || !bytes.Equal(r.body, m) || r.header.Get("Content-Type") != mediaOCIManifest ||
			r.header.Get("Docker-Content-Digest") != digestOf(m) {
			t.Errorf("GET %s: %d %v (%d bytes)", ref, r.status, r.header, len(r.body))
		}
	}
}
