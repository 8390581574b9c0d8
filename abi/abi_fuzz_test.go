package abi_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulpo/pulpo/abi"
)

// loadDescribe reads a golden describe document.
func loadDescribe(f *testing.F, name string) abi.Describe {
	f.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		f.Fatal(err)
	}
	var d abi.Describe
	if err := json.Unmarshal(b, &d); err != nil {
		f.Fatal(err)
	}
	if err := d.Validate(); err != nil {
		f.Fatalf("%s: %v", name, err)
	}
	return d
}

// FuzzEmitBatch decodes a content_emit request as the host does and checks each unit
// against the bundled plugins' describe documents. Whatever CheckContent accepts must
// keep the promises the host's pipeline relies on: a declared type, every natural key
// field present and not null, the declared number of artifacts, each with a clean
// relative path, a url and a non-negative size, and only declared relations to the
// declared type with an object key.
func FuzzEmitBatch(f *testing.F) {
	descs := []abi.Describe{loadDescribe(f, "describe_file.json"), loadDescribe(f, "describe_container.json")}
	for _, name := range []string{"emit_request.json", "upload_response.json"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		`{"content":[{"type":"file.file","fields":{"relative_path":"a","digest":"x"},"artifacts":[{"relative_path":"a","url":"u","size":-1}]}]}`,
		`{"content":[{"type":"file.file","fields":{"relative_path":"../a","digest":"x"},"artifacts":[{"relative_path":"../a","url":"u"}]}]}`,
		`{"content":[{"type":"file.file","fields":{"relative_path":null,"digest":"x"},"artifacts":[{"relative_path":"","url":"u"}]}]}`,
		`{"content":[{"type":"file.file","fields":[1],"artifacts":[]}]}`,
		`{"content":[{"type":"container.tag","fields":{"name":"a","digest":"b"},"relations":[{"name":"tagged_manifest","to":{"type":"container.manifest","key":[]}}]}]}`,
		`{"content":[{"type":"container.tag","fields":{"name":"a"},"relations":[{"name":"x","to":{"type":"y","key":{}}}]}]}`,
		`{"content":null}`, `[]`, `{"content":[{}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req abi.EmitRequest
		if json.Unmarshal(data, &req) != nil {
			return
		}
		for _, d := range descs {
			for _, dc := range req.Content {
				err := d.CheckContent(dc)
				if err != nil {
					if err.Error() == "" {
						t.Fatal("empty error")
					}
					continue
				}
				checkAccepted(t, d, dc)
			}
		}
	})
}

func checkAccepted(t *testing.T, d abi.Describe, dc abi.DeclarativeContent) {
	t.Helper()
	ct, ok := d.ContentTypeByName(dc.Type)
	if !ok {
		t.Fatalf("accepted undeclared type %q", dc.Type)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(dc.Fields, &fields); err != nil || fields == nil {
		t.Fatalf("%s: accepted fields %s", dc.Type, dc.Fields)
	}
	for _, k := range ct.NaturalKey {
		if v, ok := fields[k]; !ok || strings.TrimSpace(string(v)) == "null" {
			t.Fatalf("%s: accepted without natural key field %q: %s", dc.Type, k, dc.Fields)
		}
	}
	switch ct.Artifacts.Count {
	case abi.ArtifactsNone:
		if len(dc.Artifacts) != 0 {
			t.Fatalf("%s: accepted %d artifacts for a type without", dc.Type, len(dc.Artifacts))
		}
	case abi.ArtifactsOne:
		if len(dc.Artifacts) != 1 {
			t.Fatalf("%s: accepted %d artifacts for a type with one", dc.Type, len(dc.Artifacts))
		}
	}
	for _, a := range dc.Artifacts {
		if !abi.CleanRelativePath(a.RelativePath) || a.URL == "" || a.Size < 0 {
			t.Fatalf("%s: accepted artifact %+v", dc.Type, a)
		}
		if strings.HasPrefix(a.RelativePath, "/") || strings.Contains("/"+a.RelativePath+"/", "/../") {
			t.Fatalf("%s: accepted escaping path %q", dc.Type, a.RelativePath)
		}
	}
	for _, r := range dc.Relations {
		declared := false
		for _, rt := range ct.Relations {
			declared = declared || rt.Name == r.Name && rt.To == r.To.Type
		}
		if !declared {
			t.Fatalf("%s: accepted undeclared relation %+v", dc.Type, r)
		}
		var key map[string]json.RawMessage
		if err := json.Unmarshal(r.To.Key, &key); err != nil || key == nil {
			t.Fatalf("%s: accepted relation key %s", dc.Type, r.To.Key)
		}
	}
}

// FuzzCleanRelativePath holds the path rule every plugin-given path goes through (emitted
// artifacts, fetch names, publish metadata) to what makes it safe to join under a
// directory: never absolute, never climbing out, never ambiguous.
func FuzzCleanRelativePath(f *testing.F) {
	for _, p := range []string{"a", "a/b", "", "/a", "a/../b", "..", ".", "a//b", "a/", `a\b`, "a\x00", "...", "a/.b", "a/b/.."} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if !abi.CleanRelativePath(p) {
			return
		}
		joined := filepath.Join("/base", filepath.FromSlash(p))
		if !strings.HasPrefix(joined, "/base/") || joined != "/base/"+p {
			t.Fatalf("clean path %q joins to %q", p, joined)
		}
		for _, seg := range strings.Split(p, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("clean path %q has segment %q", p, seg)
			}
		}
	})
}

// FuzzParseVersion checks the ABI version a plugin declares (describe's abi_version and
// its marker export): accepted versions are canonical and round-trip.
func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"1.0", "0.1", "01.0", "1.", ".1", "-1.0", "+1.0", "1.0.0", "99999999999999999999.0", "1.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := abi.ParseVersion(s)
		if err == nil {
			if v.String() != s || v.Major < 0 || v.Minor < 0 {
				t.Fatalf("ParseVersion(%q) = %v", s, v)
			}
			if m, ok := abi.ParseMarker(v.Marker()); !ok || m != v {
				t.Fatalf("marker %q of %v reads %v, %v", v.Marker(), v, m, ok)
			}
		}
		if v, ok := abi.ParseMarker(s); ok && v.Marker() != s {
			t.Fatalf("ParseMarker(%q) = %v, marker %q", s, v, v.Marker())
		}
	})
}
