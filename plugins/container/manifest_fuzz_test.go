package main

import (
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// FuzzParseManifest reads arbitrary manifest bodies with arbitrary Content-Types, as a
// registry may send them: no panic; a refusal is either an error or an unsupportedError
// (skipped with a warning), never both; an accepted manifest has a media type the plugin
// stores, schemaVersion 2 and only digests the host can verify, an image manifest has a
// config, and classifying it works.
func FuzzParseManifest(f *testing.F) {
	d := "sha256:" + strings.Repeat("a", 64)
	cfg := `{"mediaType":"` + mediaDockerConfig + `","digest":"` + d + `","size":1}`
	for _, s := range []struct{ body, ct string }{
		{`{"schemaVersion":2,"mediaType":"` + mediaDockerManifest + `","config":` + cfg + `,"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"` + d + `","size":-5}]}`, ""},
		{`{"schemaVersion":2,"config":{"mediaType":"` + mediaHelmConfig + `","digest":"` + d + `"}}`, mediaOCIManifest + "; charset=utf-8"},
		{`{"schemaVersion":2,"manifests":[{"digest":"sha512:` + strings.Repeat("b", 128) + `","platform":{"architecture":"amd64","os":"linux"}}]}`, ""},
		{`{"schemaVersion":2,"mediaType":"` + mediaDockerList + `","manifests":null}`, ""},
		{`{"schemaVersion":1,"fsLayers":[]}`, ""},
		{`{"schemaVersion":2,"config":null,"manifests":[]}`, "application/json"},
		{`{"schemaVersion":2,"artifactType":"x/y","config":` + cfg + `,"layers":[{"mediaType":"text/spdx","digest":"` + d + `"}],"annotations":{"containers.bootc":"1"}}`, mediaOCIManifest},
		{`<html><body>502 Bad Gateway</body></html>`, "text/html"},
		{"\x00\xff garbage", "application/octet-stream"},
		{`{"schemaVersion":2}`, `text/plain; q=`},
		{`{"schemaVersion":2,"mediaType":5}`, ""},
	} {
		f.Add([]byte(s.body), s.ct)
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		pm, err := parseManifest(body, contentType)
		if err != nil {
			if pm != nil || err.Error() == "" {
				t.Fatalf("parseManifest: %v with %v", err, pm)
			}
			// Only readable JSON may be skipped as unsupported; garbage fails the sync.
			var ue *unsupportedError
			if errors.As(err, &ue) && !json.Valid(body) {
				t.Fatalf("unreadable body skipped as unsupported: %v", err)
			}
			return
		}
		if !slices.Contains(manifestMediaTypes, pm.mediaType) {
			t.Fatalf("accepted media type %q", pm.mediaType)
		}
		if pm.raw.SchemaVersion != 2 {
			t.Fatalf("accepted schemaVersion %d", pm.raw.SchemaVersion)
		}
		if pm.isIndex() {
			for _, m := range pm.raw.Manifests {
				if checkDigest(m.Digest) != nil {
					t.Fatalf("accepted index entry digest %q", m.Digest)
				}
				_ = platform(m.Platform)
			}
			return
		}
		if pm.raw.Config == nil || checkDigest(pm.raw.Config.Digest) != nil {
			t.Fatalf("accepted image manifest config %+v", pm.raw.Config)
		}
		for _, l := range pm.raw.Layers {
			if checkDigest(l.Digest) != nil {
				t.Fatalf("accepted layer digest %q", l.Digest)
			}
		}
		if classify(&pm.raw, nil) == "" {
			t.Fatal("no manifest type")
		}
		_ = artifactType(&pm.raw)
	})
}

// FuzzNextLink reads arbitrary Link headers of tag list pages: no panic, and a next page
// is an absolute URL resolved against the current one.
func FuzzNextLink(f *testing.F) {
	for _, h := range []string{
		``, `</v2/a/tags/list?n=2&last=b>; rel="next"`, `<https://r.test/v2/a/tags/list?last=b>;rel=next`,
		`</first>; rel="first", </x?last=z>; title="a, b"; rel="prev next"`, `</a>; rel="next`, `/v2/a; rel="next"`,
		`<http://[::1>; rel=next`, `<//other.host/x>; rel=next`, `<>; rel=next`, `<a>;;;rel=next;rel=prev`,
	} {
		f.Add(h)
	}
	const cur = "https://r.test/v2/a/tags/list?n=2"
	f.Fuzz(func(t *testing.T, h string) {
		next, err := nextLink(h, cur)
		if err != nil || next == "" {
			return
		}
		u, err := url.Parse(next)
		if err != nil || !u.IsAbs() {
			t.Fatalf("nextLink(%q) = %q: not an absolute URL (%v)", h, next, err)
		}
	})
}
