package main

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/sdk/sdktest"
)

func TestFromUpload(t *testing.T) {
	h := sdktest.New(t)
	d := func(c string) string { return "sha256:" + strings.Repeat(c, 64) }
	image := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + d("c") + `","size":2},` +
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"` + d("1") + `","size":10},` +
		`{"mediaType":"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip","digest":"` + d("2") + `","size":5}],` +
		`"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + d("5") + `","size":3}}`
	resp, err := h.FromUpload(abi.UploadRequest{Type: manifestType}, []byte(image))
	if err != nil {
		t.Fatal(err)
	}
	var m Manifest
	if err := json.Unmarshal(resp.Content.Fields, &m); err != nil {
		t.Fatal(err)
	}
	if m.MediaType != mediaOCIManifest || m.Type != "image" || m.Subject != d("5") || m.CompressedImageSize != 15 ||
		!strings.HasPrefix(m.Digest, "sha256:") {
		t.Errorf("manifest fields %+v", m)
	}
	var rels []string
	for _, r := range resp.Content.Relations {
		rels = append(rels, r.Name+" "+string(r.To.Key))
	}
	want := []string{`config_blob {"digest":"` + d("c") + `"}`, `blobs {"digest":"` + d("1") + `"}`}
	if strings.Join(rels, "|") != strings.Join(want, "|") {
		t.Errorf("relations %v, want %v (foreign layer left out)", rels, want)
	}

	index := `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + d("a") +
		`","size":1,"platform":{"architecture":"arm64","os":"linux"}}]}`
	resp, err = h.FromUpload(abi.UploadRequest{Type: manifestType, MediaType: mediaOCIIndex}, []byte(index))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Content.Relations) != 1 || resp.Content.Relations[0].Name != relListed ||
		!strings.Contains(string(resp.Content.Relations[0].Fields), "arm64") {
		t.Errorf("index relations %+v", resp.Content.Relations)
	}

	for name, body := range map[string]string{
		"not json":       `{"schemaVersion":`,
		"unknown type":   `{"schemaVersion":2,"mediaType":"application/x-foo"}`,
		"schema 1":       `{"schemaVersion":1,"fsLayers":[]}`,
		"bad digest":     `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"md5:x"}}`,
		"bad subject":    strings.Replace(image, d("5"), "sha256:zz", 1),
		"no config":      `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","layers":[]}`,
		"schemaVersion3": `{"schemaVersion":3,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`,
	} {
		_, err := h.FromUpload(abi.UploadRequest{Type: manifestType}, []byte(body))
		if ae := abiError(t, err); ae.Code != abi.CodeInvalidInput {
			t.Errorf("%s: code %s, want invalid_input", name, ae.Code)
		}
	}
	if _, err := h.FromUpload(abi.UploadRequest{Type: blobType}, []byte("x")); abiError(t, err).Code != abi.CodeUnimplemented {
		t.Errorf("blob upload: %v", err)
	}
}

// A pushed image gets labels, os and architecture from its config blob, read with
// artifact_read (ABI 1.1), as a sync gets them; a config that cannot be read leaves them
// empty without failing the push.
func TestFromUploadReadsConfig(t *testing.T) {
	h := sdktest.New(t)
	layer := "sha256:" + strings.Repeat("1", 64)
	manifest := func(configMediaType, configDigest string, configSize int) []byte {
		return []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
			`"config":{"mediaType":"` + configMediaType + `","digest":"` + configDigest + `","size":` + strconv.Itoa(configSize) + `},` +
			`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"` + layer + `","size":10}]}`)
	}
	stored := func(body string) (string, int) { return "sha256:" + h.StoreBlob([]byte(body)), len(body) }
	read := func(t *testing.T, body []byte) Manifest {
		t.Helper()
		resp, err := h.FromUpload(abi.UploadRequest{Type: manifestType}, body)
		if err != nil {
			t.Fatal(err)
		}
		var m Manifest
		if err := json.Unmarshal(resp.Content.Fields, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}

	cfg, n := stored(`{"architecture":"arm64","os":"linux","config":{"Labels":{"org.example.team":"blue"}}}`)
	m := read(t, manifest(mediaOCIConfig, cfg, n))
	if m.Architecture != "arm64" || m.OS != "linux" || m.Labels["org.example.team"] != "blue" || m.Type != "image" {
		t.Errorf("image from its config: %+v", m)
	}
	// Labels classify, as at sync: a bootc label makes a bootable image.
	boot, n := stored(`{"architecture":"amd64","os":"linux","config":{"Labels":{"containers.bootc":"1"}}}`)
	if m := read(t, manifest(mediaDockerConfig, boot, n)); m.Type != "bootable" || m.Architecture != "amd64" {
		t.Errorf("bootable image: %+v", m)
	}

	// Valid JSON even cut at the cap: only the size tells the read was partial.
	big := bytes.Repeat([]byte(" "), abi.MaxArtifactReadBytes+1)
	copy(big, `{"os":"linux"}`)
	bigDigest := "sha256:" + h.StoreBlob(big)
	notJSON, notJSONSize := stored(`not json`)
	for name, body := range map[string][]byte{
		"config not stored":           manifest(mediaOCIConfig, "sha256:"+strings.Repeat("c", 64), 20),
		"config over the cap":         manifest(mediaOCIConfig, bigDigest, len(big)),
		"config larger than declared": manifest(mediaOCIConfig, bigDigest, 20),
		"config not JSON":             manifest(mediaOCIConfig, notJSON, notJSONSize),
		"sha512 config":               manifest(mediaOCIConfig, "sha512:"+strings.Repeat("c", 128), 20),
		"artifact config":             manifest("application/vnd.example.config.v1+json", cfg, n),
	} {
		m := read(t, body)
		if m.Architecture != "" || m.OS != "" || len(m.Labels) != 0 {
			t.Errorf("%s: %+v, want no config fields", name, m)
		}
	}
}
