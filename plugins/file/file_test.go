package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/sdk/sdktest"
)

const basicURL = "https://fixtures.test/file/PULP_MANIFEST"

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sum(data string) string {
	s := sha256.Sum256([]byte(data))
	return hex.EncodeToString(s[:])
}

// fields decodes a unit's fields.
func fields(t *testing.T, dc abi.DeclarativeContent) File {
	t.Helper()
	var f File
	if err := json.Unmarshal(dc.Fields, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

func abiError(t *testing.T, err error) *abi.Error {
	t.Helper()
	var ae *abi.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T), want an *abi.Error", err, err)
	}
	return ae
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	d := sdktest.New(t).Describe() // fails the test unless the document validates
	if d.Name != "file" || len(d.ContentTypes) != 1 {
		t.Fatalf("describe: %+v", d)
	}
	ct := d.ContentTypes[0]
	if ct.Name != "file.file" || ct.EndpointName != "files" ||
		strings.Join(ct.NaturalKey, ",") != "relative_path,sha256" || strings.Join(ct.RepoKey, ",") != "relative_path" ||
		ct.Artifacts != (abi.ArtifactSpec{Count: abi.ArtifactsOne, RelativePathField: "relative_path", DigestField: "sha256"}) {
		t.Fatalf("content type: %+v", ct)
	}
	for _, f := range ct.Fields {
		if f.Type != abi.TypeString || !f.Required {
			t.Fatalf("field %+v: want a required string", f)
		}
	}
	if len(d.RepositoryTypes) != 1 || len(d.RemoteTypes) != 1 || len(d.PublicationTypes) != 1 || len(d.DistributionTypes) != 1 {
		t.Fatalf("types: %+v", d)
	}
	repo := d.RepositoryTypes[0]
	if repo.Name != "file.file" || strings.Join(repo.ContentTypes, ",") != "file.file" || strings.Join(repo.RemoteTypes, ",") != "file.file" {
		t.Fatalf("repository type: %+v", repo)
	}
	defaults := map[string]string{}
	for _, f := range repo.Fields {
		defaults[f.Name+":"+f.Type] = string(f.Default)
	}
	if len(defaults) != 2 || defaults["manifest:string"] != `"PULP_MANIFEST"` || defaults["autopublish:boolean"] != "false" {
		t.Fatalf("repository fields: %+v", repo.Fields)
	}
	if rt := d.RemoteTypes[0]; rt.Name != "file.file" || len(rt.Policies) != 3 {
		t.Fatalf("remote type: %+v", rt)
	}
	if pt := d.PublicationTypes[0]; pt.Name != "file.file" || len(pt.Fields) != 1 || pt.Fields[0].Name != "manifest" || string(pt.Fields[0].Default) != `"PULP_MANIFEST"` {
		t.Fatalf("publication type: %+v", pt)
	}
	if dt := d.DistributionTypes[0]; dt.Name != "file.file" || !dt.ServeFromPublication {
		t.Fatalf("distribution type: %+v", dt)
	}
	if so := d.SyncOptions; len(so) != 1 || so[0].Name != "optimize" || so[0].Type != abi.TypeBoolean || string(so[0].Default) != "true" {
		t.Fatalf("sync options %+v: want pulp_file's optimize, default true", so)
	}
	if len(d.Routes) != 0 {
		t.Fatalf("routes %+v: want none", d.Routes)
	}
	if got := d.RequiredExports(); strings.Join(got, ",") != "describe,sync_first_stage,publish" {
		t.Fatalf("required exports %v", got)
	}
}

func TestSync(t *testing.T) {
	t.Parallel()
	h := sdktest.New(t)
	manifest := readFixture(t, "basic/PULP_MANIFEST")
	h.Serve(basicURL, manifest)
	resp, err := h.Sync(abi.SyncRequest{
		Remote:     abi.Remote{URL: basicURL, Policy: abi.PolicyImmediate},
		Repository: abi.Repository{Name: "r", Type: "file.file", LatestVersion: 4},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Fetches) != 1 || h.Fetches[0].URL != basicURL || h.Fetches[0].Name != "PULP_MANIFEST" {
		t.Fatalf("fetches %+v", h.Fetches)
	}
	if len(h.Emitted) != 3 {
		t.Fatalf("emitted %d units, want 3", len(h.Emitted))
	}
	lines := strings.Split(strings.TrimSpace(string(manifest)), "\n")
	for i, dc := range h.Emitted {
		parts := strings.Split(lines[i], ",")
		name := fmt.Sprintf("%d.iso", i+1)
		f := fields(t, dc)
		if dc.Type != "file.file" || f != (File{RelativePath: name, SHA256: parts[1]}) {
			t.Fatalf("unit %d: %s %s", i, dc.Type, dc.Fields)
		}
		want := abi.DeclarativeArtifact{RelativePath: name, URL: "https://fixtures.test/file/" + name, SHA256: parts[1], Size: 1024}
		if len(dc.Artifacts) != 1 || fmt.Sprint(dc.Artifacts[0]) != fmt.Sprint(want) {
			t.Fatalf("unit %d artifacts %+v, want %+v", i, dc.Artifacts, want)
		}
	}
	if len(resp.Metadata) != 0 || resp.Skipped {
		t.Fatalf("response %+v: no metadata without mirror", resp)
	}
	var details syncDetails
	if err := json.Unmarshal(resp.Details, &details); err != nil {
		t.Fatal(err)
	}
	want := syncDetails{URL: basicURL, Policy: "immediate", ManifestSHA256: sum(string(manifest)), BaseVersion: 4, Entries: 3}
	if details != want {
		t.Fatalf("details %+v, want %+v", details, want)
	}

	codes := []string{}
	for _, r := range h.Reports {
		codes = append(codes, fmt.Sprintf("%s/%s/%d/%d", r.Code, r.State, r.Done, r.Total))
	}
	wantCodes := "sync.downloading.metadata/running/0/1 sync.downloading.metadata/completed/1/1 " +
		"sync.parsing.metadata/running/0/0 sync.parsing.metadata/completed/3/3"
	if strings.Join(codes, " ") != wantCodes {
		t.Fatalf("progress %v, want %s", codes, wantCodes)
	}
	if h.Reports[0].Message != "Downloading Metadata" || h.Reports[3].Message != "Parsing Metadata" {
		t.Fatalf("progress messages %+v", h.Reports)
	}
}

func TestSyncPolicies(t *testing.T) {
	t.Parallel()
	for policy, deferred := range map[string]bool{abi.PolicyImmediate: false, abi.PolicyOnDemand: true, abi.PolicyStreamed: true} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			h := sdktest.New(t)
			h.Serve(basicURL, readFixture(t, "basic/PULP_MANIFEST"))
			if _, err := h.Sync(abi.SyncRequest{Remote: abi.Remote{URL: basicURL, Policy: policy}}); err != nil {
				t.Fatal(err)
			}
			if len(h.Emitted) != 3 {
				t.Fatalf("emitted %d units", len(h.Emitted))
			}
			for _, dc := range h.Emitted {
				if a := dc.Artifacts[0]; a.Deferred != deferred || a.Size != 1024 || a.SHA256 == "" {
					t.Fatalf("policy %s: artifact %+v, want deferred %v", policy, a, deferred)
				}
			}
		})
	}
}

func TestSyncResolvesURLs(t *testing.T) {
	t.Parallel()
	paths := map[string]string{
		"1.iso":                  "1.iso",
		"deep/er/2.iso":          "deep/er/2.iso",
		"with space.txt":         "with%20space.txt",
		"comma,name.txt":         "comma%2Cname.txt",
		"plus+amp&eq=.txt":       "plus%2Bamp%26eq%3D.txt",
		"q?hash#pct%.txt":        "q%3Fhash%23pct%25.txt",
		"colon:at@semi;.txt":     "colon%3Aat%40semi%3B.txt",
		"ü/日本.txt":               "%C3%BC/%E6%97%A5%E6%9C%AC.txt",
		"tilde~under_dash-.dots": "tilde~under_dash-.dots",
	}
	var manifest strings.Builder
	for p := range paths {
		fmt.Fprintf(&manifest, "%s,%s,5\n", p, sum(p))
	}
	tests := []struct{ url, prefix, suffix string }{
		{"https://h.test/a/b/PULP_MANIFEST", "https://h.test/a/b/", ""},
		{"https://h.test/PULP_MANIFEST", "https://h.test/", ""},
		{"https://h.test/sub%20dir/x%2Cy/LISTING", "https://h.test/sub%20dir/x%2Cy/", ""},
		{"https://user@h.test:8443/a/PULP_MANIFEST?token=abc&x=1#frag", "https://user@h.test:8443/a/", "?token=abc&x=1"},
		{"https://h.test/a/dir/", "https://h.test/a/dir/", ""},
		{"https://h.test", "https://h.test/", ""},
		{"file:///srv/fixtures/file/PULP_MANIFEST", "file:///srv/fixtures/file/", ""},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			h := sdktest.New(t)
			h.Serve(tt.url, []byte(manifest.String()))
			if _, err := h.Sync(abi.SyncRequest{Remote: abi.Remote{URL: tt.url}}); err != nil {
				t.Fatal(err)
			}
			if len(h.Emitted) != len(paths) {
				t.Fatalf("emitted %d units, want %d", len(h.Emitted), len(paths))
			}
			for _, dc := range h.Emitted {
				a := dc.Artifacts[0]
				want := tt.prefix + paths[a.RelativePath] + tt.suffix
				if a.URL != want {
					t.Errorf("%q: url %s, want %s", a.RelativePath, a.URL, want)
				}
			}
		})
	}
}

func TestSyncBadManifest(t *testing.T) {
	t.Parallel()
	ok := func(p string) string { return p + "," + sum(p) + ",1\n" }
	tests := []struct {
		name, manifest, want string
	}{
		{"field count", ok("a") + "b," + sum("b") + "\n", `line 2 "b,` + sum("b") + `": want 3 comma-separated fields`},
		{"empty path", "# c\n\n," + sum("x") + ",1\n", "line 3 "},
		{"absolute path", ok("a") + ok("b") + ok("/c"), `line 3 "/c,`},
		{"dotdot", ok("../etc/passwd"), "line 1 "},
		{"dot", ok("a") + ok("a/./b"), "line 2 "},
		{"backslash", ok(`a\b`), `line 1 "a\\b,`},
		{"nul", ok("a\x00b"), "line 1 "},
		{"digest", "a,ABCDEF,1\n", `line 1 "a,ABCDEF,1": sha256 "ABCDEF" is not 64 lowercase hex digits`},
		{"size", "a," + sum("a") + ",-3\r\n", `line 1 "a,` + sum("a") + `,-3": size "-3" is not a non-negative integer`},
		{"duplicate", ok("a") + ok("b") + "a," + sum("b") + ",1\n", `line 3 "a,` + sum("b") + `,1": relative path "a" is listed on line 1 with a different sha256`},
		{"file and directory", ok("a") + ok("a/b"), "line 2 "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := sdktest.New(t)
			h.Serve(basicURL, []byte(tt.manifest))
			_, err := h.Sync(abi.SyncRequest{Remote: abi.Remote{URL: basicURL}})
			if err == nil {
				t.Fatal("sync of a bad manifest succeeded")
			}
			ae := abiError(t, err)
			if ae.Code != abi.CodeUpstream || !strings.Contains(ae.Message, basicURL+": manifest line ") || !strings.Contains(ae.Message, tt.want) {
				t.Fatalf("error %q, want code upstream and a message containing %q", err, tt.want)
			}
		})
	}
}

func TestSyncFetchFailures(t *testing.T) {
	t.Parallel()
	h := sdktest.New(t)
	h.Upstream[basicURL] = sdktest.Response{Status: 403}
	_, err := h.Sync(abi.SyncRequest{Remote: abi.Remote{URL: basicURL}})
	if ae := abiError(t, err); ae.Code != abi.CodeUpstream || !strings.Contains(ae.Message, "status 403") {
		t.Fatalf("error %v", err)
	}
	_, err = h.Sync(abi.SyncRequest{Remote: abi.Remote{URL: "https://elsewhere.test/PULP_MANIFEST"}})
	if ae := abiError(t, err); ae.Code != abi.CodeUpstream || !strings.Contains(ae.Message, "status 404") {
		t.Fatalf("error %v", err)
	}
	for _, bad := range []string{"", "PULP_MANIFEST", "/repo/PULP_MANIFEST", "mailto:a@b.c", "http://[::1/x", "https:///PULP_MANIFEST"} {
		_, err := h.Sync(abi.SyncRequest{Remote: abi.Remote{URL: bad}})
		if ae := abiError(t, err); ae.Code != abi.CodeInvalidInput || !strings.Contains(ae.Message, "remote url") {
			t.Fatalf("url %q: error %v", bad, err)
		}
	}
	if len(h.Emitted) != 0 {
		t.Fatalf("emitted %d units", len(h.Emitted))
	}
}

func TestSyncMirrorKeepsManifest(t *testing.T) {
	t.Parallel()
	for url, name := range map[string]string{
		basicURL:                              "PULP_MANIFEST",
		"https://h.test/x/my%20listing?sig=1": "my listing",
		"https://h.test/x/":                   "PULP_MANIFEST",
	} {
		h := sdktest.New(t)
		h.Serve(url, readFixture(t, "basic/PULP_MANIFEST"))
		resp, err := h.Sync(abi.SyncRequest{Remote: abi.Remote{URL: url}, Mirror: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Metadata) != 1 || resp.Metadata[0].RelativePath != name || resp.Metadata[0].Path != filepath.Join(h.InDir(), "PULP_MANIFEST") {
			t.Fatalf("%s: metadata %+v, want %q", url, resp.Metadata, name)
		}
		if !strings.Contains(string(resp.Details), `"mirror":true`) {
			t.Fatalf("details %s", resp.Details)
		}
	}
}

func TestSyncManyEntries(t *testing.T) {
	t.Parallel()
	const n = 2345
	var b bytes.Buffer
	for i := range n {
		p := fmt.Sprintf("dir%d/file-%05d.bin", i%7, i)
		fmt.Fprintf(&b, "%s,%s,%d\n", p, sum(p), i)
	}
	h := sdktest.New(t)
	h.Serve(basicURL, b.Bytes())
	if _, err := h.Sync(abi.SyncRequest{Remote: abi.Remote{URL: basicURL, Policy: abi.PolicyOnDemand}}); err != nil {
		t.Fatal(err)
	}
	if len(h.Emitted) != n || h.Batches < 5 {
		t.Fatalf("%d units in %d batches", len(h.Emitted), h.Batches)
	}
	last := h.Reports[len(h.Reports)-1]
	if last.Code != codeParsing || last.State != abi.StateCompleted || last.Done != n || last.Total != n {
		t.Fatalf("last report %+v", last)
	}
	running := 0
	for _, r := range h.Reports {
		if r.Code == codeParsing && r.State == abi.StateRunning {
			running++
		}
	}
	if running != 3 { // at 0, 1000 and 2000
		t.Fatalf("%d running parse reports, want 3", running)
	}
}

func TestSyncCancelled(t *testing.T) {
	t.Parallel()
	h := sdktest.New(t)
	h.Serve(basicURL, readFixture(t, "basic/PULP_MANIFEST"))
	h.Cancel = true
	_, err := h.Sync(abi.SyncRequest{Remote: abi.Remote{URL: basicURL}})
	if ae := abiError(t, err); ae.Code != abi.CodeCancelled {
		t.Fatalf("error %v", err)
	}
}

// content builds the publish listing entry of a stored unit.
func content(path, digest string, size int64) abi.Content {
	f, _ := json.Marshal(File{RelativePath: path, SHA256: digest})
	return abi.Content{Type: fileType, Fields: f, Artifacts: []abi.ContentArtifact{{RelativePath: path, SHA256: digest, Size: size, Downloaded: size%2 == 0}}}
}

func publishedManifest(t *testing.T, resp abi.PublishResponse, name string) string {
	t.Helper()
	if !resp.PassThrough || resp.ArtifactsPath != "" || len(resp.Metadata) != 1 || resp.Metadata[0].RelativePath != name {
		t.Fatalf("publish response %+v, want pass-through and metadata %q", resp, name)
	}
	b, err := os.ReadFile(resp.Metadata[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPublish(t *testing.T) {
	t.Parallel()
	listing := []abi.Content{
		content("b/z.iso", sum("z"), 26),
		content("a,b.txt", sum("ab"), 2),
		content("1.iso", sum("1"), 1024),
		content("b/a.iso", sum("a"), 1),
		content("empty", emptySHA256, 0),
	}
	want := "1.iso," + sum("1") + ",1024\n" +
		"a,b.txt," + sum("ab") + ",2\n" +
		"b/a.iso," + sum("a") + ",1\n" +
		"b/z.iso," + sum("z") + ",26\n" +
		"empty," + emptySHA256 + ",0\n"
	tests := []struct {
		name   string
		fields string
		file   string // "" for no manifest
	}{
		{"default", ``, "PULP_MANIFEST"},
		{"no field", `{}`, "PULP_MANIFEST"},
		{"explicit", `{"manifest":"PULP_MANIFEST"}`, "PULP_MANIFEST"},
		{"custom name", `{"manifest":"listing"}`, "listing"},
		{"in a directory", `{"manifest":"meta/TEST_MANIFEST"}`, "meta/TEST_MANIFEST"},
		{"null", `{"manifest":null}`, ""},
		{"empty", `{"manifest":""}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := sdktest.New(t)
			resp, err := h.Publish(abi.PublishRequest{
				Publication: abi.Publication{Type: fileType, Fields: json.RawMessage(tt.fields)},
				Version:     3,
			}, listing)
			if err != nil {
				t.Fatal(err)
			}
			if tt.file == "" {
				if !resp.PassThrough || len(resp.Metadata) != 0 {
					t.Fatalf("response %+v, want pass-through without metadata", resp)
				}
				return
			}
			if got := publishedManifest(t, resp, tt.file); got != want {
				t.Fatalf("manifest\n%s\nwant\n%s", got, want)
			}
			for _, l := range h.Logs {
				if l.Level == "warn" {
					t.Fatalf("unexpected warning %+v", l)
				}
			}
		})
	}
}

func TestPublishErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		fields  string
		listing []abi.Content
		want    string
	}{
		{"manifest is a file", `{"manifest":"a/b"}`, []abi.Content{content("a/b", sum("x"), 1)}, `manifest "a/b" collides with file "a/b"`},
		{"manifest is a directory", `{}`, []abi.Content{content("PULP_MANIFEST/x", sum("x"), 1)}, "collides"},
		{"manifest under a file", `{"manifest":"a/M"}`, []abi.Content{content("a", sum("x"), 1)}, "collides"},
		{"unclean manifest", `{"manifest":"../M"}`, nil, "not a clean relative path"},
		{"absolute manifest", `{"manifest":"/M"}`, nil, "not a clean relative path"},
		{"manifest not a string", `{"manifest":3}`, nil, "want a string or null"},
		{"bad unit digest", `{}`, []abi.Content{content("a", "xyz", 1)}, "not 64 lowercase hex digits"},
		{"unit path with a line break", `{}`, []abi.Content{content("a\nb", sum("x"), 1)}, "line break"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := sdktest.New(t)
			_, err := h.Publish(abi.PublishRequest{Publication: abi.Publication{Type: fileType, Fields: json.RawMessage(tt.fields)}}, tt.listing)
			if ae := abiError(t, err); ae.Code != abi.CodeInvalidInput || !strings.Contains(ae.Message, tt.want) {
				t.Fatalf("error %v, want invalid_input containing %q", err, tt.want)
			}
		})
	}
}

func TestPublishUnknownSize(t *testing.T) {
	t.Parallel()
	h := sdktest.New(t)
	resp, err := h.Publish(abi.PublishRequest{Publication: abi.Publication{Type: fileType}}, []abi.Content{
		{Type: fileType, Fields: json.RawMessage(`{"relative_path":"a","sha256":"` + sum("a") + `"}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := publishedManifest(t, resp, "PULP_MANIFEST"); got != "a,"+sum("a")+",0\n" {
		t.Fatalf("manifest %q", got)
	}
	if len(h.Logs) == 0 || h.Logs[0].Level != "warn" || !strings.Contains(h.Logs[0].Message, "no size") {
		t.Fatalf("logs %+v, want a warning about the missing size", h.Logs)
	}
}

// TestSyncThenPublish checks that publishing what a sync emitted gives back the upstream
// manifest, sorted and normalised.
func TestSyncThenPublish(t *testing.T) {
	t.Parallel()
	h := sdktest.New(t)
	upstream := readFixture(t, "golden/PULP_MANIFEST")
	h.Serve(basicURL, upstream)
	if _, err := h.Sync(abi.SyncRequest{Remote: abi.Remote{URL: basicURL, Policy: abi.PolicyOnDemand}}); err != nil {
		t.Fatal(err)
	}
	var listing []abi.Content
	for i := len(h.Emitted) - 1; i >= 0; i-- { // any order will do
		dc := h.Emitted[i]
		a := dc.Artifacts[0]
		listing = append(listing, abi.Content{Type: dc.Type, Fields: dc.Fields,
			Artifacts: []abi.ContentArtifact{{RelativePath: a.RelativePath, SHA256: a.SHA256, Size: a.Size}}})
	}
	resp, err := h.Publish(abi.PublishRequest{Publication: abi.Publication{Type: fileType}}, listing)
	if err != nil {
		t.Fatal(err)
	}
	got := publishedManifest(t, resp, "PULP_MANIFEST")

	entries, err := readAll(t, string(upstream))
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.RelativePath, b.RelativePath) })
	var want []string
	for _, e := range entries {
		want = append(want, e.String())
	}
	if got != strings.Join(want, "\n")+"\n" {
		t.Fatalf("published\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
}

// TestFileList checks the publication's compact file list across chunk and block
// boundaries, with a path longer than a chunk.
func TestFileList(t *testing.T) {
	t.Parallel()
	var l fileList
	var want []string
	for i := range 3*recordBlockLen + 17 {
		p := fmt.Sprintf("%x/some/longer/directory/name/%d.bin", (i*7919)%1000, i)
		if i == 1000 {
			p = strings.Repeat("L", pathChunkBytes+5)
		}
		l.add(p, sha256.Sum256([]byte(p)), int64(i))
		want = append(want, p)
	}
	if len(l.paths) < 2 || len(l.blocks) != 4 {
		t.Fatalf("%d path chunks, %d blocks", len(l.paths), len(l.blocks))
	}
	slices.Sort(want)
	order := l.sorted()
	for k, i := range order {
		if got := string(l.path(i)); got != want[k] {
			t.Fatalf("position %d: %.40q, want %.40q", k, got, want[k])
		}
		if r := l.record(i); r.sum != sha256.Sum256(l.path(i)) {
			t.Fatalf("position %d: digest does not belong to the path", k)
		}
	}
}
