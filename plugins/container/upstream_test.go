package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/sdk/sdktest"
)

// upstream is a fake registry on an sdktest host: it serves blobs, manifests (by tag and
// by digest, with Content-Type and Docker-Content-Digest) and a tag list.
type upstream struct {
	t    *testing.T
	h    *sdktest.Host
	base string // scheme and host
	name string
	tags []string
	n    int // makes every generated blob unique
}

const registryURL = "https://registry.test"

func newUpstream(t *testing.T, name string) *upstream {
	t.Helper()
	u := &upstream{t: t, h: sdktest.New(t), base: registryURL, name: name}
	return u
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func (u *upstream) url(kind, ref string) string {
	return u.base + "/v2/" + u.name + "/" + kind + "/" + ref
}

// blob serves body as a blob and returns its descriptor.
func (u *upstream) blob(mediaType string, body []byte) Descriptor {
	d := digestOf(body)
	u.h.Serve(u.url("blobs", d), body)
	return Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(body))}
}

// layer makes a unique layer blob.
func (u *upstream) layer() Descriptor {
	u.n++
	return u.blob("application/vnd.oci.image.layer.v1.tar+gzip", fmt.Appendf(nil, "layer %d of %s", u.n, u.name))
}

// config makes an image config blob.
func (u *upstream) config(mediaType, arch, os string, labels map[string]string) Descriptor {
	u.n++
	b, _ := json.Marshal(map[string]any{"architecture": arch, "os": os, "created": fmt.Sprint(u.n),
		"config": map[string]any{"Labels": labels}, "rootfs": map[string]any{"type": "layers"}})
	return u.blob(mediaType, b)
}

// manifest serves a manifest body by digest and, when tag is not empty, by tag.
func (u *upstream) manifest(tag, mediaType string, body []byte) string {
	d := digestOf(body)
	resp := sdktest.Response{Headers: map[string]string{"content-type": mediaType, "docker-content-digest": d}, Body: body}
	u.h.Upstream[u.url("manifests", d)] = resp
	if tag != "" {
		u.h.Upstream[u.url("manifests", tag)] = resp
		u.tags = append(u.tags, tag)
	}
	return d
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "   ") // indented: the bytes, not a re-encoding, must be kept
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// image serves an OCI image manifest with a config and n layers and returns its digest.
func (u *upstream) image(tag string, layers int, extra map[string]any) (string, Descriptor, []Descriptor) {
	cfg := u.config(mediaOCIConfig, "amd64", "linux", map[string]string{"org.example.tag": tag})
	var ls []Descriptor
	for range layers {
		ls = append(ls, u.layer())
	}
	m := map[string]any{"schemaVersion": 2, "mediaType": mediaOCIManifest, "config": cfg, "layers": ls}
	for k, v := range extra {
		m[k] = v
	}
	return u.manifest(tag, mediaOCIManifest, marshal(u.t, m)), cfg, ls
}

// serveTags serves the tag list in pages of size n (0: one page), linking pages with
// relative or absolute Link headers.
func (u *upstream) serveTags(n int, absolute bool) {
	if n == 0 {
		n = len(u.tags) + 1
	}
	first := u.url("tags", "list")
	for i := 0; i == 0 || i < len(u.tags); i += n {
		end := min(i+n, len(u.tags))
		body, _ := json.Marshal(tagList{Name: u.name, Tags: u.tags[i:end]})
		resp := sdktest.Response{Body: body, Headers: map[string]string{}}
		if end < len(u.tags) {
			next := fmt.Sprintf("/v2/%s/tags/list?n=%d&last=%s", u.name, n, u.tags[end-1])
			if absolute {
				next = u.base + next
			}
			resp.Headers["link"] = fmt.Sprintf(`<%s>; rel="next"`, next)
		}
		page := first
		if i > 0 {
			page = fmt.Sprintf("%s?n=%d&last=%s", first, n, u.tags[i-1])
		}
		u.h.Upstream[page] = resp
	}
}

// sync runs a sync of the upstream with the given remote fields (upstream_name is added).
func (u *upstream) sync(policy string, fields map[string]any) (abi.SyncResponse, error) {
	u.t.Helper()
	if fields == nil {
		fields = map[string]any{}
	}
	if _, ok := fields["upstream_name"]; !ok {
		fields["upstream_name"] = u.name
	}
	f, _ := json.Marshal(fields)
	return u.h.Sync(abi.SyncRequest{Remote: abi.Remote{Name: "up", URL: u.base, Policy: policy, Fields: f}})
}
