package integration

import (
	"encoding/json"
	"net/http"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/pulpo/pulpo/integration/harness"
)

// sbomConfigType is the config media type of the SBOM artifact, which the referrers API
// reports as its artifactType.
const sbomConfigType = "application/vnd.example.sbom.config.v1+json"

// TestContainerSyncedReferrers syncs an image and an OCI artifact whose subject is that
// image (an SBOM, as cosign or oras attach them) and finds the artifact through the
// referrers API of Pulpo's registry.
func TestContainerSyncedReferrers(t *testing.T) {
	t.Parallel()
	up := newOCIRegistry(t)
	p := newPushed()
	img := up.pushImage(t, p, "test/signed", "v1", 1, true)
	imgDigest := mustDigest(t, img)
	layer, err := random.Layer(128, "application/vnd.example.sbom.v1+json")
	if err != nil {
		t.Fatal(err)
	}
	art, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		t.Fatal(err)
	}
	art = mutate.ConfigMediaType(art, sbomConfigType)
	art = mutate.Subject(art, v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: must(t, img.Digest), Size: int64(len(mustRaw(t, img)))}).(v1.Image)
	if err := remote.Write(up.ref(t, "test/signed", "sbom"), art); err != nil {
		t.Fatal(err)
	}
	artDigest := mustDigest(t, art)

	srv := harness.Start(t, harness.Options{})
	rm := srv.JSON(t, http.MethodPost, "remotes/container/container/", map[string]any{"name": "signed", "url": up.srv.URL,
		"policy": "immediate", "username": up.user, "password": up.pass, "upstream_name": "test/signed"}, http.StatusCreated)
	repo := srv.JSON(t, http.MethodPost, "repositories/container/container/", map[string]any{"name": "signed", "remote": rm["pulp_href"]}, http.StatusCreated)
	rh := repo["pulp_href"].(string)
	srv.RunTask(t, http.MethodPost, rh+"sync/", map[string]any{})
	srv.RunTask(t, http.MethodPost, "distributions/container/container/", map[string]any{"name": "signed", "base_path": "signed", "repository": rh})

	// The REST API shows the link.
	page := srv.JSON(t, http.MethodGet, "content/container/manifests/?digest="+artDigest, nil, http.StatusOK)
	if res := page["results"].([]any); len(res) != 1 || res[0].(map[string]any)["subject"] != imgDigest {
		t.Fatalf("synced artifact manifest %v, want subject %s", page["results"], imgDigest)
	}

	reg := newV2(srv)
	resp, body := reg.do(t, http.MethodGet, "/v2/signed/referrers/"+imgDigest, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != string(types.OCIImageIndex) {
		t.Fatalf("referrers: %s %s %s", resp.Status, resp.Header.Get("Content-Type"), truncated(body))
	}
	var index struct {
		Manifests []struct {
			MediaType    string `json:"mediaType"`
			Digest       string `json:"digest"`
			Size         int64  `json:"size"`
			ArtifactType string `json:"artifactType"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(body, &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Manifests) != 1 {
		t.Fatalf("referrers of %s: %s, want the SBOM %s", imgDigest, body, artDigest)
	}
	if m := index.Manifests[0]; m.Digest != artDigest || m.ArtifactType != sbomConfigType ||
		m.MediaType != string(types.OCIManifestSchema1) || m.Size != int64(len(mustRaw(t, art))) {
		t.Errorf("referrer %+v, want %s of type %s", m, artDigest, sbomConfigType)
	}
	// The filter the spec defines.
	resp, body = reg.do(t, http.MethodGet, "/v2/signed/referrers/"+imgDigest+"?artifactType=application/x-other", nil)
	if err := json.Unmarshal(body, &index); err != nil || resp.StatusCode != http.StatusOK || len(index.Manifests) != 0 {
		t.Errorf("filtered referrers: %s %s", resp.Status, body)
	}
	// The artifact has no referrers of its own.
	_, body = reg.do(t, http.MethodGet, "/v2/signed/referrers/"+artDigest, nil)
	if err := json.Unmarshal(body, &index); err != nil || len(index.Manifests) != 0 {
		t.Errorf("referrers of the artifact: %s", body)
	}
}

// TestContainerPushedImageMetadata pushes an image and finds the labels, os and
// architecture of its config on the manifest in the REST API, as a sync records them
// (the plugin reads the pushed config blob with artifact_read).
func TestContainerPushedImageMetadata(t *testing.T) {
	t.Parallel()
	srv := harness.Start(t, harness.Options{})
	reg := newV2(srv)
	img := randomImage(t, 1, true) // amd64, linux, label org.example.fixture=yes
	if err := remote.Write(reg.ref(t, "pushed/app:v1"), img, regAuth); err != nil {
		t.Fatal(err)
	}
	d := mustDigest(t, img)
	page := srv.JSON(t, http.MethodGet, "content/container/manifests/?digest="+d, nil, http.StatusOK)
	res := page["results"].([]any)
	if len(res) != 1 {
		t.Fatalf("manifest %s: %v", d, page)
	}
	m := res[0].(map[string]any)
	labels, _ := m["labels"].(map[string]any)
	if m["architecture"] != "amd64" || m["os"] != "linux" || labels["org.example.fixture"] != "yes" || m["type"] != "image" {
		t.Errorf("pushed manifest %v: want amd64, linux, label org.example.fixture=yes, type image", m)
	}
}

func must[T any](t *testing.T, f func() (T, error)) T {
	t.Helper()
	v, err := f()
	if err != nil {
		t.Fatal(err)
	}
	return v
}
