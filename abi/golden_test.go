package abi_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/pulpo/pulpo/abi"
)

var update = flag.Bool("update", false, "rewrite testdata/*.json from the values in golden_test.go")

func raw(s string) json.RawMessage { return json.RawMessage(s) }

// goldens maps each file in testdata/ to the message it holds. The values double as the
// examples of spec/v1.md.
var goldens = map[string]any{
	"error.json": abi.Error{Code: abi.CodeNotFound, Message: "route /v2/missing/tags/list: no such repository"},
	"error_response.json": abi.ErrorResponse{Error: &abi.Error{
		Code: abi.CodeUpstream, Message: "fetch https://example.org/repo/PULP_MANIFEST: connection refused"}},
	"describe_request.json":   abi.DescribeRequest{Host: abi.HostInfo{Name: "pulpo", Version: "0.1.0", ABIVersion: "1.1"}},
	"describe_file.json":      describeFile,
	"describe_container.json": describeContainer,
	"sync_request.json": abi.SyncRequest{
		Remote: abi.Remote{Name: "upstream", Type: "file.file", URL: "https://example.org/repo/PULP_MANIFEST",
			Policy: abi.PolicyOnDemand},
		Repository: abi.Repository{Name: "isos", Type: "file.file", LatestVersion: 3,
			Fields:          raw(`{"autopublish":false,"manifest":"PULP_MANIFEST"}`),
			LastSyncDetails: raw(`{"manifest_sha256":"2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae","url":"https://example.org/repo/PULP_MANIFEST"}`)},
		Mirror:  false,
		Options: raw(`{"optimize":true}`),
		InDir:   abi.InDir,
	},
	"sync_response.json": abi.SyncResponse{
		Details:  raw(`{"manifest_sha256":"fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9","url":"https://example.org/repo/PULP_MANIFEST"}`),
		Metadata: []abi.MetadataFile{{RelativePath: "PULP_MANIFEST", Path: "/in/PULP_MANIFEST"}},
	},
	"fetch_request.json": abi.FetchRequest{URL: "https://example.org/repo/PULP_MANIFEST", Name: "PULP_MANIFEST"},
	"fetch_request_head.json": abi.FetchRequest{URL: "https://registry.example.org/v2/library/busybox/manifests/latest",
		Method: "HEAD", Headers: map[string]string{"accept": "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"}},
	"fetch_response.json": abi.FetchResponse{Status: 200,
		Headers: map[string]string{"content-type": "text/plain; charset=utf-8", "etag": `"5e1f-6a3"`},
		Path:    "/in/PULP_MANIFEST", Size: 1187, SHA256: "fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9"},
	"emit_request.json": abi.EmitRequest{Content: []abi.DeclarativeContent{
		{
			Type:   "file.file",
			Fields: raw(`{"digest":"b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c","relative_path":"isos/boot.iso"}`),
			Artifacts: []abi.DeclarativeArtifact{{RelativePath: "isos/boot.iso", URL: "https://example.org/repo/isos/boot.iso",
				SHA256: "b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c", Size: 734003200, Deferred: true}},
		},
		{
			Type:   "container.tag",
			Fields: raw(`{"digest":"sha256:7b3ccabffc97de872a30dfd234fd972a66d247c8cfc69b0550f276481852627c","name":"latest"}`),
			Relations: []abi.Relation{{Name: "tagged_manifest", To: abi.ContentRef{Type: "container.manifest",
				Key: raw(`{"digest":"sha256:7b3ccabffc97de872a30dfd234fd972a66d247c8cfc69b0550f276481852627c"}`)}}},
		},
		{
			Type:   "container.manifest",
			Fields: raw(`{"digest":"sha256:9c1b9ae8a0f7c19e7ca6c37d1ba0b8d50e1b96d35b68a4c0c1c7e3fdf8e8dd1a","media_type":"application/vnd.oci.image.index.v1+json","schema_version":2,"type":"index"}`),
			Artifacts: []abi.DeclarativeArtifact{{RelativePath: "sha256:9c1b9ae8a0f7c19e7ca6c37d1ba0b8d50e1b96d35b68a4c0c1c7e3fdf8e8dd1a",
				URL:    "https://registry.example.org/v2/library/busybox/manifests/sha256:9c1b9ae8a0f7c19e7ca6c37d1ba0b8d50e1b96d35b68a4c0c1c7e3fdf8e8dd1a",
				SHA256: "9c1b9ae8a0f7c19e7ca6c37d1ba0b8d50e1b96d35b68a4c0c1c7e3fdf8e8dd1a", Size: 9218,
				Headers: map[string]string{"accept": "application/vnd.oci.image.index.v1+json"}}},
			Relations: []abi.Relation{{Name: "listed_manifests",
				To:     abi.ContentRef{Type: "container.manifest", Key: raw(`{"digest":"sha256:7b3ccabffc97de872a30dfd234fd972a66d247c8cfc69b0550f276481852627c"}`)},
				Fields: raw(`{"architecture":"amd64","os":"linux"}`)}},
		},
	}},
	"emit_response.json":          abi.EmitResponse{Accepted: 3},
	"lookup_request.json":         abi.LookupRequest{Type: "container.manifest", Keys: []json.RawMessage{raw(`{"digest":"sha256:7b3ccabffc97de872a30dfd234fd972a66d247c8cfc69b0550f276481852627c"}`)}, Scope: abi.ScopeAll},
	"lookup_response.json":        abi.LookupResponse{Content: []abi.Content{{Type: "container.manifest", Fields: raw(`{"digest":"sha256:7b3ccabffc97de872a30dfd234fd972a66d247c8cfc69b0550f276481852627c","media_type":"application/vnd.oci.image.manifest.v1+json","schema_version":2}`)}}},
	"artifact_stat_request.json":  abi.ArtifactStatRequest{SHA256: "b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c"},
	"artifact_stat_response.json": abi.ArtifactStatResponse{Exists: true, Size: 734003200},
	"artifact_read_request.json":  abi.ArtifactReadRequest{SHA256: "b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c", Length: abi.MaxArtifactReadBytes},
	"artifact_read_response.json": abi.ArtifactReadResponse{Data: []byte(`{"architecture":"amd64","os":"linux","config":{"Labels":{"org.opencontainers.image.version":"1.36"}}}`), Size: 101},
	"progress.json":               abi.ProgressReport{Code: "sync.parsing.metadata", Message: "Parsing Metadata Lines", State: abi.StateRunning, Done: 250, Total: 1000},
	"log.json":                    abi.LogRecord{Level: "info", Message: "manifest parsed", Attrs: map[string]any{"entries": 1000.0, "url": "https://example.org/repo/PULP_MANIFEST"}},
	"publish_request.json": abi.PublishRequest{
		Publication: abi.Publication{Type: "file.file", Fields: raw(`{"manifest":"PULP_MANIFEST"}`)},
		Repository:  abi.Repository{Name: "isos", Type: "file.file", LatestVersion: 4, Fields: raw(`{"autopublish":true,"manifest":"PULP_MANIFEST"}`)},
		Version:     4, ContentPath: "/in/content.jsonl", InDir: abi.InDir, OutDir: abi.OutDir,
	},
	"publish_response.json": abi.PublishResponse{PassThrough: true,
		Metadata: []abi.MetadataFile{{RelativePath: "PULP_MANIFEST", Path: "/out/PULP_MANIFEST"}}},
	"published_artifact.json": abi.PublishedArtifact{RelativePath: "Packages/b/boot.rpm", SHA256: "b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c"},
	"content.json": abi.Content{Type: "file.file",
		Fields:    raw(`{"digest":"b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c","relative_path":"isos/boot.iso"}`),
		Artifacts: []abi.ContentArtifact{{RelativePath: "isos/boot.iso", SHA256: "b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c", Size: 734003200, Downloaded: true}}},
	"upload_request.json": abi.UploadRequest{Type: "container.manifest", Path: "/in/upload",
		SHA256: "7b3ccabffc97de872a30dfd234fd972a66d247c8cfc69b0550f276481852627c", Size: 1187,
		Digest:    "sha256:7b3ccabffc97de872a30dfd234fd972a66d247c8cfc69b0550f276481852627c",
		MediaType: "application/vnd.oci.image.manifest.v1+json"},
	"upload_response.json": abi.UploadResponse{Content: abi.DeclarativeContent{
		Type:   "container.manifest",
		Fields: raw(`{"digest":"sha256:7b3ccabffc97de872a30dfd234fd972a66d247c8cfc69b0550f276481852627c","media_type":"application/vnd.oci.image.manifest.v1+json","schema_version":2,"type":"image"}`),
		Relations: []abi.Relation{
			{Name: "config_blob", To: abi.ContentRef{Type: "container.blob", Key: raw(`{"digest":"sha256:b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c"}`)}},
			{Name: "blobs", To: abi.ContentRef{Type: "container.blob", Key: raw(`{"digest":"sha256:fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9"}`)}},
		},
	}},
	"route_request.json": abi.RouteRequest{Method: "GET", Path: "/v2/library/busybox/tags/list", Query: "n=100",
		Headers: map[string]string{"accept": "application/json", "authorization": "Bearer eyJhbGciOi..."}},
	"route_response.json": abi.RouteResponse{Status: 200,
		Headers: map[string]string{"content-type": "application/json", "docker-distribution-api-version": "registry/2.0"},
		Body:    []byte(`{"name":"library/busybox","tags":["1.36","latest"]}`)},
	"route_response_artifact.json": abi.RouteResponse{Status: 200,
		Headers:       map[string]string{"content-type": "application/octet-stream", "docker-content-digest": "sha256:b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c"},
		ServeArtifact: "b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c"},
}

func encode(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	return append(b, '\n'), err
}

// TestGolden decodes every golden file into its type, rejecting unknown members, and checks
// that encoding the result gives the file back byte for byte.
func TestGolden(t *testing.T) {
	t.Parallel()
	for name, want := range goldens {
		file := filepath.Join("testdata", name)
		if *update {
			b, err := encode(want)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test ./abi -update to create it)", err)
			}
			got := reflect.New(reflect.TypeOf(want))
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			if err := dec.Decode(got.Interface()); err != nil {
				t.Fatalf("decode %s: %v", name, err)
			}
			again, err := encode(got.Elem().Interface())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, data) {
				t.Fatalf("%s does not round-trip:\n--- file\n%s\n--- re-encoded\n%s", name, data, again)
			}
			if d, ok := got.Interface().(*abi.Describe); ok {
				if err := d.Validate(); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			}
		})
	}
}

// TestGoldenEmitMatchesDescribe checks the golden emit example against the golden
// describe documents, so the spec's examples agree with each other.
func TestGoldenEmitMatchesDescribe(t *testing.T) {
	t.Parallel()
	for i, dc := range goldens["emit_request.json"].(abi.EmitRequest).Content {
		d := describeFile
		if dc.Type != "file.file" {
			d = describeContainer
		}
		if err := d.CheckContent(dc); err != nil {
			t.Errorf("emit_request.json unit %d: %v", i, err)
		}
	}
}

// TestGoldenFilesListed fails when testdata holds a JSON file no test decodes.
func TestGoldenFilesListed(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, ok := goldens[filepath.Base(f)]; !ok {
			t.Errorf("%s is not in goldens", f)
		}
	}
}
