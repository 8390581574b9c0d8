package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/sdk/sdktest"
)

func abiError(t *testing.T, err error) *abi.Error {
	t.Helper()
	var ae *abi.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T), want an *abi.Error", err, err)
	}
	return ae
}

// unitKey names a unit by type and natural key.
func unitKey(t *testing.T, typ string, fields json.RawMessage) string {
	t.Helper()
	var f map[string]any
	if err := json.Unmarshal(fields, &f); err != nil {
		t.Fatal(err)
	}
	switch typ {
	case tagType:
		return typ + " " + f["name"].(string) + "@" + f["digest"].(string)
	default:
		return typ + " " + f["digest"].(string)
	}
}

// emitted indexes what a sync emitted, checking on the way that no unit comes twice and
// that every relation points at a unit emitted before it (what the host requires).
type emitted struct {
	units map[string]abi.DeclarativeContent
	order []string
	byTyp map[string][]abi.DeclarativeContent
}

func check(t *testing.T, h *sdktest.Host) *emitted {
	t.Helper()
	e := &emitted{units: map[string]abi.DeclarativeContent{}, byTyp: map[string][]abi.DeclarativeContent{}}
	for _, dc := range h.Emitted {
		k := unitKey(t, dc.Type, dc.Fields)
		if _, dup := e.units[k]; dup {
			t.Errorf("%s emitted twice", k)
		}
		for _, r := range dc.Relations {
			tk := unitKey(t, r.To.Type, r.To.Key)
			if r.To.Type == tagType {
				t.Errorf("%s: relation to a tag", k)
			}
			if _, ok := e.units[tk]; !ok {
				t.Errorf("%s: relation %s to %s, which was not emitted before it", k, r.Name, tk)
			}
		}
		e.units[k] = dc
		e.order = append(e.order, k)
		e.byTyp[dc.Type] = append(e.byTyp[dc.Type], dc)
	}
	return e
}

func (e *emitted) manifest(t *testing.T, digest string) (abi.DeclarativeContent, Manifest) {
	t.Helper()
	dc, ok := e.units[manifestType+" "+digest]
	if !ok {
		t.Fatalf("manifest %s not emitted", digest)
	}
	var m Manifest
	if err := json.Unmarshal(dc.Fields, &m); err != nil {
		t.Fatal(err)
	}
	return dc, m
}

func (e *emitted) tags() []string {
	var out []string
	for _, dc := range e.byTyp[tagType] {
		var tg Tag
		_ = json.Unmarshal(dc.Fields, &tg)
		out = append(out, tg.Name)
	}
	return out
}

func relTargets(t *testing.T, dc abi.DeclarativeContent, name string) []string {
	t.Helper()
	var out []string
	for _, r := range dc.Relations {
		if r.Name == name {
			var k map[string]string
			if err := json.Unmarshal(r.To.Key, &k); err != nil {
				t.Fatal(err)
			}
			out = append(out, k["digest"])
		}
	}
	return out
}

// TestDescribe checks the plugin's describe against the ABI's golden example of what
// pulp_container declares, so the two cannot drift apart.
func TestDescribe(t *testing.T) {
	t.Parallel()
	d := sdktest.New(t).Describe() // fails the test unless the document validates
	want, err := os.ReadFile(filepath.Join("..", "..", "abi", "testdata", "describe_container.json"))
	if err != nil {
		t.Fatal(err)
	}
	var golden abi.Describe
	if err := json.Unmarshal(want, &golden); err != nil {
		t.Fatal(err)
	}
	got, _ := json.MarshalIndent(d, "", "  ")
	exp, _ := json.MarshalIndent(golden, "", "  ")
	if !bytes.Equal(got, exp) {
		t.Fatalf("describe differs from abi/testdata/describe_container.json:\n%s", got)
	}
	if strings.Join(d.RequiredExports(), ",") != "describe,sync_first_stage,handle_route" {
		t.Fatalf("required exports %v", d.RequiredExports())
	}
}

func TestRouteUnimplemented(t *testing.T) {
	t.Parallel()
	_, err := sdktest.New(t).Route(abi.RouteRequest{Method: "GET", Path: "/v2/"})
	if ae := abiError(t, err); ae.Code != abi.CodeUnimplemented {
		t.Fatalf("route: %v", ae)
	}
}

func TestSyncImagesIndexAndArtifact(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{abi.PolicyImmediate, abi.PolicyOnDemand} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			u := newUpstream(t, "team/app")
			// Two tags on one image; a second image sharing a layer.
			img1, cfg1, layers1 := u.image("v1", 2, map[string]any{"annotations": map[string]string{"org.opencontainers.image.version": "1"}})
			u.tags = append(u.tags, "latest")
			u.h.Upstream[u.url("manifests", "latest")] = u.h.Upstream[u.url("manifests", "v1")]
			shared := layers1[0]
			cfg2 := u.config(mediaDockerConfig, "arm64", "linux", nil)
			img2 := u.manifest("v2", mediaDockerManifest, marshal(t, map[string]any{"schemaVersion": 2, "mediaType": mediaDockerManifest,
				"config": cfg2, "layers": []Descriptor{shared, u.layer()}}))
			// A multi-platform index of two manifests that are not tagged themselves.
			amd, _, _ := u.image("", 1, nil)
			arm, _, _ := u.image("", 1, nil)
			index := u.manifest("multi", mediaOCIIndex, marshal(t, map[string]any{"schemaVersion": 2, "mediaType": mediaOCIIndex,
				"manifests": []map[string]any{
					{"mediaType": mediaOCIManifest, "digest": amd, "size": 1, "platform": map[string]any{"architecture": "amd64", "os": "linux"}},
					{"mediaType": mediaOCIManifest, "digest": arm, "size": 1, "platform": map[string]any{"architecture": "arm64", "os": "linux", "variant": "v8", "os.features": []string{"f"}}},
				}}))
			// An OCI artifact: empty config, a custom layer, an artifactType.
			empty := u.blob("application/vnd.oci.empty.v1+json", []byte("{}"))
			sbom := u.blob("application/spdx+json", []byte(`{"spdxVersion":"SPDX-2.3"}`))
			art := u.manifest("sbom", mediaOCIManifest, marshal(t, map[string]any{"schemaVersion": 2, "mediaType": mediaOCIManifest,
				"artifactType": "application/spdx+json", "config": empty, "layers": []Descriptor{sbom}}))
			u.serveTags(0, false)

			if _, err := u.sync(policy, nil); err != nil {
				t.Fatal(err)
			}
			e := check(t, u.h)
			if got := e.tags(); !reflect.DeepEqual(got, []string{"v1", "latest", "v2", "multi", "sbom"}) {
				t.Fatalf("tags %v", got)
			}
			if n := len(e.byTyp[manifestType]); n != 6 {
				t.Fatalf("%d manifests, want 6", n)
			}
			// Blobs: 2 configs + 3 layers for the images, 2 configs + 2 layers in the
			// index, 2 for the artifact.
			if n := len(e.byTyp[blobType]); n != 11 {
				t.Fatalf("%d blobs, want 11", n)
			}

			// Manifests carry their exact bytes as one artifact, fetched by digest, never deferred.
			for _, d := range []string{img1, img2, amd, arm, index, art} {
				dc, m := e.manifest(t, d)
				a := dc.Artifacts[0]
				body := u.h.Upstream[u.url("manifests", d)].Body
				if len(dc.Artifacts) != 1 || a.RelativePath != d || a.URL != u.url("manifests", d) || "sha256:"+a.SHA256 != d ||
					a.Size != int64(len(body)) || a.Deferred || m.Digest != d || m.SchemaVersion != 2 {
					t.Errorf("manifest %s: %+v %+v", d, m, dc.Artifacts)
				}
				// The host's download of it must ask for manifests, as the fetch did.
				if acc := a.Headers["accept"]; !strings.Contains(acc, "application/vnd.oci.image.index.v1+json") ||
					!strings.Contains(acc, "application/vnd.docker.distribution.manifest.v2+json") {
					t.Errorf("manifest %s: artifact headers %v, want an accept of manifest media types", d, a.Headers)
				}
			}
			// Blobs carry registry URLs, digests and sizes, deferred unless immediate.
			for _, dc := range e.byTyp[blobType] {
				var b Blob
				_ = json.Unmarshal(dc.Fields, &b)
				a := dc.Artifacts[0]
				if a.RelativePath != b.Digest || a.URL != u.url("blobs", b.Digest) || "sha256:"+a.SHA256 != b.Digest ||
					a.Size != int64(len(u.h.Upstream[a.URL].Body)) || a.Deferred != (policy != abi.PolicyImmediate) {
					t.Errorf("blob %s: %+v", b.Digest, a)
				}
			}

			dc1, m1 := e.manifest(t, img1)
			if m1.Type != "image" || m1.MediaType != mediaOCIManifest || m1.Architecture != "amd64" || m1.OS != "linux" ||
				m1.Labels["org.example.tag"] != "v1" || m1.Annotations["org.opencontainers.image.version"] != "1" ||
				m1.CompressedImageSize != layers1[0].Size+layers1[1].Size || m1.ArtifactType != "" {
				t.Errorf("image manifest fields %+v", m1)
			}
			if got := relTargets(t, dc1, relConfig); !reflect.DeepEqual(got, []string{cfg1.Digest}) {
				t.Errorf("config relation %v", got)
			}
			if got := relTargets(t, dc1, relBlobs); !reflect.DeepEqual(got, []string{layers1[0].Digest, layers1[1].Digest}) {
				t.Errorf("layer relations %v", got)
			}
			if _, m2 := e.manifest(t, img2); m2.MediaType != mediaDockerManifest || m2.Architecture != "arm64" || len(m2.Labels) != 0 || m2.Labels == nil {
				t.Errorf("docker manifest fields %+v", m2)
			}
			dci, mi := e.manifest(t, index)
			if mi.Type != "index" || mi.MediaType != mediaOCIIndex || mi.Architecture != "" {
				t.Errorf("index fields %+v", mi)
			}
			var plats []Platform
			for _, r := range dci.Relations {
				var p Platform
				if r.Name != relListed || json.Unmarshal(r.Fields, &p) != nil {
					t.Fatalf("index relation %+v", r)
				}
				plats = append(plats, p)
			}
			if got := relTargets(t, dci, relListed); !reflect.DeepEqual(got, []string{amd, arm}) ||
				!reflect.DeepEqual(plats[1], Platform{Architecture: "arm64", OS: "linux", Variant: "v8", OSFeatures: []string{"f"}}) {
				t.Errorf("listed manifests %v %+v", got, plats)
			}
			if _, ma := e.manifest(t, art); ma.Type != "artifact" || ma.ArtifactType != "application/spdx+json" || ma.Architecture != "" {
				t.Errorf("artifact fields %+v", ma)
			}
			for _, dc := range e.byTyp[tagType] {
				var tg Tag
				_ = json.Unmarshal(dc.Fields, &tg)
				if got := relTargets(t, dc, relTaggedWith); len(got) != 1 || got[0] != tg.Digest {
					t.Errorf("tag %+v relations %v", tg, got)
				}
			}
			// Config blobs are read for labels once each; layers are never fetched by the plugin.
			for _, f := range u.h.Fetches {
				if strings.Contains(f.URL, "/blobs/") {
					if slices.ContainsFunc(layers1, func(d Descriptor) bool { return strings.HasSuffix(f.URL, d.Digest) }) {
						t.Errorf("plugin fetched layer %s", f.URL)
					}
				}
				if strings.Contains(f.URL, "/manifests/") && f.Headers["accept"] != acceptManifests {
					t.Errorf("manifest fetch %s with accept %q", f.URL, f.Headers["accept"])
				}
			}
		})
	}
}

func TestTagListPagination(t *testing.T) {
	t.Parallel()
	for _, absolute := range []bool{false, true} {
		u := newUpstream(t, "paged")
		for _, tag := range []string{"a", "b", "c", "d", "e"} {
			u.image(tag, 1, nil)
		}
		u.serveTags(2, absolute)
		if _, err := u.sync(abi.PolicyOnDemand, nil); err != nil {
			t.Fatal(err)
		}
		e := check(t, u.h)
		if got := e.tags(); !reflect.DeepEqual(got, []string{"a", "b", "c", "d", "e"}) {
			t.Fatalf("absolute=%v: tags %v", absolute, got)
		}
		var pages int
		for _, f := range u.h.Fetches {
			if strings.Contains(f.URL, "/tags/list") {
				pages++
			}
		}
		if pages != 3 {
			t.Fatalf("absolute=%v: %d tag list pages fetched, want 3", absolute, pages)
		}
	}

	t.Run("loop and foreign host", func(t *testing.T) {
		t.Parallel()
		for link, want := range map[string]string{
			`</v2/loop/tags/list>; rel="next"`:                           "links back to itself",
			`<https://elsewhere.test/v2/loop/tags/list?n=1>; rel="next"`: "on another server",
			`<broken; rel="next"`:                                        "unterminated",
		} {
			u := newUpstream(t, "loop")
			u.h.Upstream[u.url("tags", "list")] = sdktest.Response{Body: []byte(`{"name":"loop","tags":[]}`), Headers: map[string]string{"link": link}}
			_, err := u.sync(abi.PolicyImmediate, nil)
			if ae := abiError(t, err); ae.Code != abi.CodeUpstream || !strings.Contains(ae.Message, want) {
				t.Errorf("link %s: %v", link, ae)
			}
		}
	})
}

func TestNextLink(t *testing.T) {
	t.Parallel()
	const cur = "https://r.test/v2/a/tags/list?n=2"
	tests := []struct{ header, want string }{
		{``, ""},
		{`</v2/a/tags/list?n=2&last=b>; rel="next"`, "https://r.test/v2/a/tags/list?n=2&last=b"},
		{`<https://r.test/v2/a/tags/list?last=b>;rel=next`, "https://r.test/v2/a/tags/list?last=b"},
		{`<list?last=c>; rel="next"`, "https://r.test/v2/a/tags/list?last=c"},
		{`</first>; rel="first", </x?last=z>; title="a, b"; rel="prev next"`, "https://r.test/x?last=z"},
		{`</prev>; rel="prev"`, ""},
	}
	for _, tt := range tests {
		got, err := nextLink(tt.header, cur)
		if err != nil || got != tt.want {
			t.Errorf("nextLink(%q) = %q, %v; want %q", tt.header, got, err, tt.want)
		}
	}
	for _, bad := range []string{`/v2/a; rel="next"`, `</a>; rel="next`} {
		if _, err := nextLink(bad, cur); err == nil {
			t.Errorf("nextLink(%q) accepted", bad)
		}
	}
}

func TestTagFilters(t *testing.T) {
	t.Parallel()
	tags := []string{"latest", "v1.0", "v1.1", "v2.0", "v2.0-rc1", "dev", "ml_i", "ml_ii", "manifest_a", "manifest_b", "manifest_d"}
	tests := []struct {
		name               string
		includes, excludes []string
		want               []string
	}{
		{"none", nil, nil, tags},
		{"star", []string{"v*"}, nil, []string{"v1.0", "v1.1", "v2.0", "v2.0-rc1"}},
		{"question marks", []string{"ml_??"}, nil, []string{"ml_ii"}},
		{"include and exclude", []string{"manifest*"}, []string{"*_[bd]"}, []string{"manifest_a"}},
		{"fnmatch negation", []string{"manifest_[!a]"}, nil, []string{"manifest_b", "manifest_d"}},
		{"exclude only", nil, []string{"*-rc*", "dev"}, []string{"latest", "v1.0", "v1.1", "v2.0", "ml_i", "ml_ii", "manifest_a", "manifest_b", "manifest_d"}},
		{"several includes", []string{"latest", "v2*"}, []string{"*rc*"}, []string{"latest", "v2.0"}},
	}
	for _, tt := range tests {
		f, digests, err := newTagFilter(tt.includes, tt.excludes)
		if err != nil || len(digests) != 0 {
			t.Fatalf("%s: %v %v", tt.name, err, digests)
		}
		var got []string
		for _, tag := range tags {
			if f.keep(tag) {
				got = append(got, tag)
			}
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: kept %v, want %v", tt.name, got, tt.want)
		}
	}
	_, digests, err := newTagFilter([]string{"v*", "sha256:" + strings.Repeat("a", 64)}, nil)
	if err != nil || !reflect.DeepEqual(digests, []string{"sha256:" + strings.Repeat("a", 64)}) {
		t.Fatalf("digest include: %v %v", digests, err)
	}
	for _, bad := range [][2][]string{{{"v[1"}, nil}, {nil, {"[]"}}, {{"sha256:xyz"}, nil}} {
		if _, _, err := newTagFilter(bad[0], bad[1]); err == nil {
			t.Errorf("patterns %v accepted", bad)
		}
	}
}

func TestSyncFilters(t *testing.T) {
	t.Parallel()
	u := newUpstream(t, "filtered")
	keep, _, _ := u.image("v1.0", 1, nil)
	u.image("v1.0-rc", 1, nil)
	u.image("dev", 1, nil)
	untagged, _, _ := u.image("", 1, nil)
	// Cosign companions: one for a synced manifest, one for a manifest not synced.
	sigOf := func(digest string) string { return "sha256-" + strings.TrimPrefix(digest, "sha256:") + ".sig" }
	sigLayer := u.blob("application/vnd.dev.cosign.simplesigning.v1+json", []byte(`{"critical":{}}`))
	u.manifest(sigOf(keep), mediaOCIManifest, marshal(t, map[string]any{"schemaVersion": 2, "mediaType": mediaOCIManifest,
		"config": u.config(mediaOCIConfig, "", "", nil), "layers": []Descriptor{sigLayer}}))
	dev := digestOf(u.h.Upstream[u.url("manifests", "dev")].Body)
	u.manifest(sigOf(dev), mediaOCIManifest, marshal(t, map[string]any{"schemaVersion": 2, "mediaType": mediaOCIManifest,
		"config": u.config(mediaOCIConfig, "", "", nil), "layers": []Descriptor{u.blob("application/vnd.dev.cosign.simplesigning.v1+json", []byte(`{"x":1}`))}}))
	u.serveTags(0, false)

	// include_tags and excludes (the 2.28 spelling) merge; a digest in includes syncs an
	// untagged manifest.
	if _, err := u.sync(abi.PolicyImmediate, map[string]any{"include_tags": []string{"v1*"}, "excludes": []string{"*-rc"},
		"includes": []string{untagged}}); err != nil {
		t.Fatal(err)
	}
	e := check(t, u.h)
	if got := e.tags(); !reflect.DeepEqual(got, []string{"v1.0", sigOf(keep)}) {
		t.Fatalf("tags %v", got)
	}
	e.manifest(t, untagged)
	_, sig := e.manifest(t, digestOf(u.h.Upstream[u.url("manifests", sigOf(keep))].Body))
	if sig.Type != "cosign_signature" || sig.ArtifactType != "" {
		t.Fatalf("signature manifest type %q, artifact type %q", sig.Type, sig.ArtifactType)
	}
	if len(e.byTyp[manifestType]) != 3 {
		t.Fatalf("%d manifests, want 3 (v1.0, its signature, the untagged one)", len(e.byTyp[manifestType]))
	}

	_, err := u.sync(abi.PolicyImmediate, map[string]any{"exclude_tags": []string{"v[1"}})
	if ae := abiError(t, err); ae.Code != abi.CodeInvalidInput || !strings.Contains(ae.Message, "v[1") {
		t.Fatalf("bad pattern: %v", ae)
	}
}

func TestForeignLayers(t *testing.T) {
	t.Parallel()
	for _, include := range []bool{false, true} {
		u := newUpstream(t, "win")
		foreign := u.blob("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", []byte("windows base layer"))
		foreign.URLs = []string{"https://mcr.test/base"}
		normal := u.layer()
		cfg := u.config(mediaDockerConfig, "amd64", "windows", nil)
		d := u.manifest("ltsc", mediaDockerManifest, marshal(t, map[string]any{"schemaVersion": 2, "mediaType": mediaDockerManifest,
			"config": cfg, "layers": []Descriptor{foreign, normal}}))
		u.serveTags(0, false)
		if _, err := u.sync(abi.PolicyImmediate, map[string]any{"include_foreign_layers": include}); err != nil {
			t.Fatal(err)
		}
		e := check(t, u.h)
		dc, m := e.manifest(t, d)
		want := []string{normal.Digest}
		if include {
			want = []string{foreign.Digest, normal.Digest}
		}
		if got := relTargets(t, dc, relBlobs); !reflect.DeepEqual(got, want) || m.OS != "windows" ||
			m.CompressedImageSize != foreign.Size+normal.Size {
			t.Errorf("include_foreign_layers=%v: layers %v, fields %+v", include, got, m)
		}
		_, emittedForeign := e.units[blobType+" "+foreign.Digest]
		if emittedForeign != include {
			t.Errorf("include_foreign_layers=%v: foreign blob emitted: %v", include, emittedForeign)
		}
	}
}

func TestManifestClassification(t *testing.T) {
	t.Parallel()
	u := newUpstream(t, "kinds")
	helm := u.manifest("helm", mediaOCIManifest, marshal(t, map[string]any{"schemaVersion": 2, "mediaType": mediaOCIManifest,
		"config": u.blob(mediaHelmConfig, []byte(`{"name":"chart"}`)), "layers": []Descriptor{u.blob("application/vnd.cncf.helm.chart.content.v1.tar+gzip", []byte("chart"))}}))
	bootc := u.manifest("bootc", mediaOCIManifest, marshal(t, map[string]any{"schemaVersion": 2, "mediaType": mediaOCIManifest,
		"config": u.config(mediaOCIConfig, "amd64", "linux", map[string]string{"containers.bootc": "1"}), "layers": []Descriptor{u.layer()}}))
	flatpak := u.manifest("flatpak", mediaOCIManifest, marshal(t, map[string]any{"schemaVersion": 2, "mediaType": mediaOCIManifest,
		"config": u.config(mediaOCIConfig, "amd64", "linux", map[string]string{"org.flatpak.ref": "app/x"}), "layers": []Descriptor{u.layer()}}))
	u.serveTags(0, false)
	if _, err := u.sync(abi.PolicyImmediate, nil); err != nil {
		t.Fatal(err)
	}
	e := check(t, u.h)
	for d, want := range map[string][2]string{helm: {"helm", mediaHelmConfig}, bootc: {"bootable", ""}, flatpak: {"flatpak", ""}} {
		if _, m := e.manifest(t, d); m.Type != want[0] || m.ArtifactType != want[1] {
			t.Errorf("manifest %s: type %q artifact_type %q, want %v", d, m.Type, m.ArtifactType, want)
		}
	}
	// The helm config is not an image config: it is emitted as a blob, not read.
	for _, f := range u.h.Fetches {
		if strings.Contains(f.URL, "/blobs/") && strings.HasSuffix(f.URL, digestOf([]byte(`{"name":"chart"}`))) {
			t.Errorf("helm config fetched as metadata: %s", f.URL)
		}
	}
}

func TestParseManifest(t *testing.T) {
	t.Parallel()
	cfg := `{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":1}`
	ociCfg := `{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":1}`
	tests := []struct {
		name, body, contentType, want string
	}{
		{"json media type wins", `{"schemaVersion":2,"mediaType":"` + mediaDockerManifest + `","config":` + cfg + `}`, mediaOCIManifest, mediaDockerManifest},
		{"content type", `{"schemaVersion":2,"config":` + ociCfg + `}`, mediaOCIManifest + "; charset=utf-8", mediaOCIManifest},
		{"guess docker from config", `{"schemaVersion":2,"config":` + cfg + `}`, "application/json", mediaDockerManifest},
		{"guess oci from config", `{"schemaVersion":2,"config":` + ociCfg + `}`, "", mediaOCIManifest},
		{"guess index", `{"schemaVersion":2,"manifests":[]}`, "", mediaOCIIndex},
		{"docker list", `{"schemaVersion":2,"mediaType":"` + mediaDockerList + `","manifests":[]}`, "", mediaDockerList},
	}
	for _, tt := range tests {
		pm, err := parseManifest([]byte(tt.body), tt.contentType)
		if err != nil || pm.mediaType != tt.want {
			t.Errorf("%s: %v %v", tt.name, pm, err)
		}
	}
	for name, body := range map[string]string{
		"schema 1":       `{"schemaVersion":1,"fsLayers":[{"blobSum":"sha256:x"}]}`,
		"signed":         `{"schemaVersion":1,"mediaType":"` + mediaDockerV1Signed + `"}`,
		"unknown type":   `{"schemaVersion":2,"mediaType":"application/x-thing"}`,
		"nothing to see": `{}`,
	} {
		var ue *unsupportedError
		if _, err := parseManifest([]byte(body), ""); !errors.As(err, &ue) {
			t.Errorf("%s: err = %v, want unsupported", name, err)
		}
	}
	for name, body := range map[string]string{
		"not json":    `{`,
		"no config":   `{"schemaVersion":2,"mediaType":"` + mediaOCIManifest + `"}`,
		"bad digest":  `{"schemaVersion":2,"mediaType":"` + mediaOCIManifest + `","config":{"digest":"md5:00"}}`,
		"bad version": `{"schemaVersion":3,"mediaType":"` + mediaOCIIndex + `","manifests":[]}`,
		"bad entry":   `{"schemaVersion":2,"mediaType":"` + mediaOCIIndex + `","manifests":[{"digest":"sha256:AB"}]}`,
		"bad layer":   `{"schemaVersion":2,"config":` + ociCfg + `,"layers":[{"digest":"sha256:../x"}]}`,
	} {
		var ue *unsupportedError
		if _, err := parseManifest([]byte(body), mediaOCIManifest); err == nil || errors.As(err, &ue) {
			t.Errorf("%s: err = %v, want a parse error", name, err)
		}
	}
}

func TestDigestChecks(t *testing.T) {
	t.Parallel()
	t.Run("header digest the bytes do not have", func(t *testing.T) {
		t.Parallel()
		u := newUpstream(t, "lying")
		d, _, _ := u.image("v1", 1, nil)
		resp := u.h.Upstream[u.url("manifests", "v1")]
		resp.Headers = map[string]string{"content-type": mediaOCIManifest, "docker-content-digest": "sha256:" + strings.Repeat("0", 64)}
		u.h.Upstream[u.url("manifests", "v1")] = resp
		u.serveTags(0, false)
		_, err := u.sync(abi.PolicyImmediate, nil)
		if ae := abiError(t, err); ae.Code != abi.CodeUpstream || !strings.Contains(ae.Message, strings.TrimPrefix(d, "sha256:")) {
			t.Fatalf("err = %v", ae)
		}
	})
	t.Run("no header: digest of the bytes", func(t *testing.T) {
		t.Parallel()
		u := newUpstream(t, "plain")
		d, _, _ := u.image("v1", 1, nil)
		resp := u.h.Upstream[u.url("manifests", "v1")]
		resp.Headers = map[string]string{} // neither content type nor digest
		u.h.Upstream[u.url("manifests", "v1")] = resp
		u.serveTags(0, false)
		if _, err := u.sync(abi.PolicyImmediate, nil); err != nil {
			t.Fatal(err)
		}
		check(t, u.h).manifest(t, d)
	})
	t.Run("index entry whose bytes differ", func(t *testing.T) {
		t.Parallel()
		u := newUpstream(t, "tampered")
		child, _, _ := u.image("", 1, nil)
		u.manifest("multi", mediaOCIIndex, marshal(t, map[string]any{"schemaVersion": 2, "mediaType": mediaOCIIndex,
			"manifests": []map[string]any{{"mediaType": mediaOCIManifest, "digest": child, "size": 1}}}))
		resp := u.h.Upstream[u.url("manifests", child)]
		resp.Body = append(bytes.Clone(resp.Body), ' ')
		u.h.Upstream[u.url("manifests", child)] = resp
		u.serveTags(0, false)
		_, err := u.sync(abi.PolicyImmediate, nil)
		if ae := abiError(t, err); ae.Code != abi.CodeUpstream || !strings.Contains(ae.Message, "expected "+child) {
			t.Fatalf("err = %v", ae)
		}
	})
	t.Run("config whose bytes differ", func(t *testing.T) {
		t.Parallel()
		u := newUpstream(t, "badcfg")
		_, cfg, _ := u.image("v1", 1, nil)
		u.h.Serve(u.url("blobs", cfg.Digest), []byte(`{"os":"evil"}`))
		u.serveTags(0, false)
		_, err := u.sync(abi.PolicyImmediate, nil)
		if ae := abiError(t, err); ae.Code != abi.CodeUpstream || !strings.Contains(ae.Message, cfg.Digest) {
			t.Fatalf("err = %v", ae)
		}
	})
}

func TestSkippedTags(t *testing.T) {
	t.Parallel()
	u := newUpstream(t, "mixed")
	u.image("good", 1, nil)
	u.manifest("old", mediaDockerV1Signed, []byte(`{"schemaVersion":1,"name":"mixed","fsLayers":[],"signatures":[]}`))
	u.tags = append(u.tags, "deleted", "bad/tag") // listed, but no manifest; an invalid name
	u.serveTags(0, false)
	if _, err := u.sync(abi.PolicyImmediate, nil); err != nil {
		t.Fatal(err)
	}
	e := check(t, u.h)
	if got := e.tags(); !reflect.DeepEqual(got, []string{"good"}) {
		t.Fatalf("tags %v", got)
	}
	var warned int
	for _, l := range u.h.Logs {
		if l.Level == "warn" {
			warned++
		}
	}
	if warned != 3 {
		t.Fatalf("%d warnings, want 3 (schema 1, deleted, invalid name): %+v", warned, u.h.Logs)
	}
}

func TestStoredManifestKeepsItsConfigFields(t *testing.T) {
	t.Parallel()
	u := newUpstream(t, "again")
	d, cfg, _ := u.image("v1", 1, nil)
	u.serveTags(0, false)
	stored, _ := json.Marshal(Manifest{Digest: d, SchemaVersion: 2, MediaType: mediaOCIManifest, Type: "image",
		Labels: map[string]string{"from": "store"}, Architecture: "s390x", OS: "linux"})
	u.h.Content = []abi.Content{{Type: manifestType, Fields: stored}}
	if _, err := u.sync(abi.PolicyImmediate, nil); err != nil {
		t.Fatal(err)
	}
	if _, m := check(t, u.h).manifest(t, d); m.Labels["from"] != "store" || m.Architecture != "s390x" {
		t.Fatalf("fields %+v", m)
	}
	for _, f := range u.h.Fetches {
		if strings.HasSuffix(f.URL, cfg.Digest) {
			t.Fatalf("config of a stored manifest fetched again")
		}
	}
}

func TestRemoteValidation(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		url, name, want string
	}{
		{"ftp://registry.test", "a", "http(s) url"},
		{"https://registry.test", "", "upstream_name"},
		{"https://registry.test", "Upper/Case", "not a repository name"},
		{"https://registry.test", "a//b", "not a repository name"},
	} {
		f, _ := json.Marshal(map[string]string{"upstream_name": tt.name})
		_, err := sdktest.New(t).Sync(abi.SyncRequest{Remote: abi.Remote{URL: tt.url, Fields: f}})
		if ae := abiError(t, err); ae.Code != abi.CodeInvalidInput || !strings.Contains(ae.Message, tt.want) {
			t.Errorf("%s %q: %v", tt.url, tt.name, ae)
		}
	}
	// Docker Hub's official images live under library/.
	for _, tt := range []struct{ url, name, want string }{
		{"https://registry-1.docker.io", "busybox", "https://registry-1.docker.io/v2/library/busybox/tags/list"},
		{"https://registry-1.docker.io/some/path", "org/app", "https://registry-1.docker.io/v2/org/app/tags/list"},
		{"http://user:pw@localhost:5000", "busybox", "http://user:pw@localhost:5000/v2/busybox/tags/list"},
	} {
		r, err := newRegistry(tt.url, tt.name)
		if err != nil || r.tagsURL() != tt.want {
			t.Errorf("%s %s: %v %v", tt.url, tt.name, r, err)
		}
	}
}

func TestCancelled(t *testing.T) {
	t.Parallel()
	u := newUpstream(t, "c")
	u.image("v1", 1, nil)
	u.serveTags(0, false)
	u.h.Cancel = true
	_, err := u.sync(abi.PolicyImmediate, nil)
	if ae := abiError(t, err); ae.Code != abi.CodeCancelled {
		t.Fatalf("err = %v", ae)
	}
}

// A synced manifest keeps its subject, as a pushed one does, so that the registry lists
// synced signatures and SBOMs as referrers; a subject digest the plugin cannot handle is
// dropped with a warning, and the manifest still syncs.
func TestSyncSubject(t *testing.T) {
	t.Parallel()
	u := newUpstream(t, "team/signed")
	img, _, _ := u.image("v1", 1, nil)
	empty := u.blob("application/vnd.oci.empty.v1+json", []byte("{}"))
	sig := u.blob("application/vnd.example.signature.v1", []byte("signature"))
	subject := func(d string) map[string]any {
		return map[string]any{"schemaVersion": 2, "mediaType": mediaOCIManifest, "artifactType": "application/vnd.example.signature.v1",
			"config": empty, "layers": []Descriptor{sig}, "subject": Descriptor{MediaType: mediaOCIManifest, Digest: d, Size: 100}}
	}
	art := u.manifest("sig", mediaOCIManifest, marshal(t, subject(img)))
	bad := u.manifest("bad", mediaOCIManifest, marshal(t, subject("md5:abc")))
	u.serveTags(0, false)
	if _, err := u.sync(abi.PolicyImmediate, nil); err != nil {
		t.Fatal(err)
	}
	e := check(t, u.h)
	if _, m := e.manifest(t, art); m.Subject != img || m.ArtifactType != "application/vnd.example.signature.v1" {
		t.Errorf("artifact: subject %q, artifact_type %q; want %s", m.Subject, m.ArtifactType, img)
	}
	if _, m := e.manifest(t, img); m.Subject != "" {
		t.Errorf("image: subject %q", m.Subject)
	}
	if _, m := e.manifest(t, bad); m.Subject != "" {
		t.Errorf("bad subject kept: %q", m.Subject)
	}
}
