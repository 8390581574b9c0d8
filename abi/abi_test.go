package abi_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/pulpo/pulpo/abi"
)

func TestVersion(t *testing.T) {
	t.Parallel()
	cur := abi.Current()
	if cur.String() != "1.1" || cur.Marker() != "pulpo_abi_version_1_1" {
		t.Fatalf("Current() = %v, marker %s", cur, cur.Marker())
	}
	tests := []struct {
		marker string
		want   abi.Version
		ok     bool
	}{
		{"pulpo_abi_version_1_0", abi.Version{Major: 1}, true},
		{"pulpo_abi_version_1_12", abi.Version{Major: 1, Minor: 12}, true},
		{"pulpo_abi_version_2_0", abi.Version{Major: 2}, true},
		{"pulpo_abi_version_1", abi.Version{}, false},
		{"pulpo_abi_version_01_0", abi.Version{}, false},
		{"pulpo_abi_version_1_-1", abi.Version{}, false},
		{"pulpo_abi_version_1_0_0", abi.Version{}, false},
		{"describe", abi.Version{}, false},
	}
	for _, tt := range tests {
		got, ok := abi.ParseMarker(tt.marker)
		if ok != tt.ok || got != tt.want {
			t.Errorf("ParseMarker(%q) = %v, %v; want %v, %v", tt.marker, got, ok, tt.want, tt.ok)
		}
	}
	host := abi.Version{Major: 1, Minor: 2}
	for v, want := range map[abi.Version]bool{{1, 0}: true, {1, 2}: true, {1, 3}: false, {2, 0}: false, {0, 9}: false} {
		if host.Supports(v) != want {
			t.Errorf("1.2 supports %v: got %v", v, !want)
		}
	}
	if _, err := abi.ParseVersion("1"); err == nil {
		t.Error("ParseVersion(1) succeeded")
	}
}

func TestErrorIs(t *testing.T) {
	t.Parallel()
	var err error = &abi.Error{Code: abi.CodeNotFound, Message: "no such route"}
	wrapped := errors.Join(errors.New("call handle_route"), err)
	if !errors.Is(wrapped, abi.NewError(abi.CodeNotFound, "")) {
		t.Error("errors.Is by code failed")
	}
	if errors.Is(wrapped, abi.NewError(abi.CodeInternal, "")) {
		t.Error("errors.Is matched another code")
	}
	if got := err.Error(); got != "not_found: no such route" {
		t.Errorf("Error() = %q", got)
	}
}

func TestValidateRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(d *abi.Describe)
		want   string
	}{
		{"bad plugin name", func(d *abi.Describe) { d.Name = "File" }, `name "File"`},
		{"bad abi version", func(d *abi.Describe) { d.ABIVersion = "one" }, "abi_version"},
		{"no content types", func(d *abi.Describe) { d.ContentTypes = nil; d.RepositoryTypes = nil }, "at least one content type"},
		{"foreign prefix", func(d *abi.Describe) { d.ContentTypes[0].Name = "rpm.file" }, `must start with the plugin name "file."`},
		{"unknown key field", func(d *abi.Describe) { d.ContentTypes[0].NaturalKey = []string{"path"} }, `natural_key field "path" is not declared`},
		{"optional key field", func(d *abi.Describe) { d.ContentTypes[0].Fields[1].Required = false }, `natural_key field "digest" must be required`},
		{"bad field type", func(d *abi.Describe) { d.ContentTypes[0].Fields[1].Type = "number" }, `type "number"`},
		{"artifact path field", func(d *abi.Describe) { d.ContentTypes[0].Artifacts.RelativePathField = "path" }, "relative_path_field"},
		{"bad count", func(d *abi.Describe) { d.ContentTypes[0].Artifacts.Count = "two" }, `count "two"`},
		{"repo of unknown type", func(d *abi.Describe) { d.RepositoryTypes[0].ContentTypes = []string{"file.dir"} }, `content type "file.dir" is not declared`},
		{"mirror option", func(d *abi.Describe) {
			d.SyncOptions = append(d.SyncOptions, abi.Field{Name: "mirror", Type: abi.TypeBoolean})
		}, "defined by the host"},
		{"pulp route", func(d *abi.Describe) { d.Routes = []abi.Route{{Prefix: "/pulp/api/"}} }, "belongs to the host"},
		{"route without slash", func(d *abi.Describe) { d.Routes = []abi.Route{{Prefix: "/v2"}} }, "starts and ends with /"},
		{"bad default", func(d *abi.Describe) { d.SyncOptions[0].Default = json.RawMessage("{") }, "default is not JSON"},
		{"duplicate type", func(d *abi.Describe) { d.ContentTypes = append(d.ContentTypes, d.ContentTypes[0]) }, "declared twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := clone(t, describeFile)
			tt.mutate(&d)
			err := d.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestRequiredExports(t *testing.T) {
	t.Parallel()
	got := strings.Join(describeContainer.RequiredExports(), ",")
	if got != "describe,sync_first_stage,handle_route" {
		t.Fatalf("RequiredExports() = %s", got)
	}
}

func TestCheckContent(t *testing.T) {
	t.Parallel()
	okFile := abi.DeclarativeContent{Type: "file.file", Fields: raw(`{"relative_path":"a/b","digest":"00"}`),
		Artifacts: []abi.DeclarativeArtifact{{RelativePath: "a/b", URL: "http://x/a/b"}}}
	if err := describeFile.CheckContent(okFile); err != nil {
		t.Fatal(err)
	}
	withHeaders := okFile
	withHeaders.Artifacts = []abi.DeclarativeArtifact{{RelativePath: "a/b", URL: "http://x/a/b",
		Headers: map[string]string{"accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"}}}
	if err := describeFile.CheckContent(withHeaders); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		d    abi.Describe
		dc   func(dc *abi.DeclarativeContent)
		want string
	}{
		{"unknown type", describeFile, func(dc *abi.DeclarativeContent) { dc.Type = "file.dir" }, "not declared"},
		{"not an object", describeFile, func(dc *abi.DeclarativeContent) { dc.Fields = raw(`[1]`) }, "JSON object"},
		{"missing key", describeFile, func(dc *abi.DeclarativeContent) { dc.Fields = raw(`{"relative_path":"a/b"}`) }, `"digest" is missing`},
		{"no artifact", describeFile, func(dc *abi.DeclarativeContent) { dc.Artifacts = nil }, "one artifact, got 0"},
		{"path mismatch", describeFile, func(dc *abi.DeclarativeContent) { dc.Artifacts[0].RelativePath = "a/c" }, "must equal field"},
		{"unclean path", describeFile, func(dc *abi.DeclarativeContent) {
			dc.Fields = raw(`{"relative_path":"../b","digest":"00"}`)
			dc.Artifacts[0].RelativePath = "../b"
		}, "clean relative path"},
		{"no url", describeFile, func(dc *abi.DeclarativeContent) { dc.Artifacts[0].URL = "" }, "url is empty"},
		{"header owned by the host", describeFile, func(dc *abi.DeclarativeContent) {
			dc.Artifacts[0].Headers = map[string]string{"accept": "*/*", "authorization": "Bearer x"}
		}, `headers "authorization": the host owns`},
		{"header not lower case", describeFile, func(dc *abi.DeclarativeContent) { dc.Artifacts[0].Headers = map[string]string{"Accept": "*/*"} }, "lower case"},
		{"header not a token", describeFile, func(dc *abi.DeclarativeContent) { dc.Artifacts[0].Headers = map[string]string{"a b": "1"} }, "not an HTTP token"},
		{"header value injection", describeFile, func(dc *abi.DeclarativeContent) {
			dc.Artifacts[0].Headers = map[string]string{"accept": "a\r\nx-evil: 1"}
		}, "control character"},
		{"undeclared relation", describeContainer, func(dc *abi.DeclarativeContent) {
			*dc = abi.DeclarativeContent{Type: "container.tag", Fields: raw(`{"name":"latest","digest":"sha256:00"}`),
				Relations: []abi.Relation{{Name: "points_to", To: abi.ContentRef{Type: "container.manifest", Key: raw(`{}`)}}}}
		}, `relation "points_to" is not declared`},
		{"wrong target", describeContainer, func(dc *abi.DeclarativeContent) {
			*dc = abi.DeclarativeContent{Type: "container.tag", Fields: raw(`{"name":"latest","digest":"sha256:00"}`),
				Relations: []abi.Relation{{Name: "tagged_manifest", To: abi.ContentRef{Type: "container.blob", Key: raw(`{}`)}}}}
		}, "target type"},
	}
	for _, tt := range tests {
		dc := okFile
		dc.Artifacts = append([]abi.DeclarativeArtifact(nil), okFile.Artifacts...)
		tt.dc(&dc)
		if err := tt.d.CheckContent(dc); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: CheckContent() = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestCleanRelativePath(t *testing.T) {
	t.Parallel()
	for p, want := range map[string]bool{
		"a": true, "a/b.txt": true, "a,b/c d": true, "sha256:abc": true,
		"": false, "/a": false, "a/": false, "a//b": false, "./a": false, "a/../b": false, "..": false, `a\b`: false,
	} {
		if got := abi.CleanRelativePath(p); got != want {
			t.Errorf("CleanRelativePath(%q) = %v", p, got)
		}
	}
}

func TestSignatures(t *testing.T) {
	t.Parallel()
	hf := abi.HostFunctions()
	if got := hf[abi.HostFetch].String(); got != "(i64) -> (i64)" {
		t.Errorf("fetch: %s", got)
	}
	if got := hf[abi.HostCancelled].String(); got != "() -> (i32)" {
		t.Errorf("cancelled: %s", got)
	}
	if !abi.ExportSignature().Equal(abi.Signature{Results: []abi.ValueType{abi.I32}}) {
		t.Error("export signature")
	}
	// Every host function has the minor that added it: wasmcheck refuses an import newer
	// than the plugin's marker.
	for name := range hf {
		since, ok := abi.Since(name)
		if !ok || since > abi.VersionMinor || (name == abi.HostArtifactRead) != (since == 1) {
			t.Errorf("Since(%s) = %d, %v", name, since, ok)
		}
	}
	if since, ok := abi.Since(abi.ExportContentFromUpload); !ok || since != 1 {
		t.Errorf("Since(content_from_upload) = %d, %v", since, ok)
	}
	if _, ok := abi.Since("nope"); ok {
		t.Error("Since(nope) is defined")
	}
	if len(abi.KernelFunctions()) != 32 {
		t.Errorf("kernel functions: %d", len(abi.KernelFunctions()))
	}
}

// FuzzDecodeDescribe checks that no input makes decoding or validation panic, and that a
// document that validates survives a round trip unchanged.
func FuzzDecodeDescribe(f *testing.F) {
	for _, d := range []abi.Describe{describeFile, describeContainer} {
		b, _ := json.Marshal(d)
		f.Add(b)
	}
	f.Add([]byte(`{"name":"x","content_types":[{"name":"x.y","fields":null}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d abi.Describe
		if json.Unmarshal(data, &d) != nil || d.Validate() != nil {
			return
		}
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var again abi.Describe
		if err := json.Unmarshal(b, &again); err != nil {
			t.Fatal(err)
		}
		if err := again.Validate(); err != nil {
			t.Fatalf("valid document invalid after round trip: %v", err)
		}
	})
}

func clone(t *testing.T, d abi.Describe) abi.Describe {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var out abi.Describe
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
