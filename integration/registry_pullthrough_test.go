package integration

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/pulpo/pulpo/integration/harness"
)

// TestRegistryPullThrough pulls images through a pull-through distribution:
// the first pull of <base_path>/<upstream name> makes a cache and fetches
// from the upstream registry (manifest digests equal upstream's, blobs
// streamed on demand), a digest pull works too, a tag moved upstream is seen
// once the cached one is older than the TTL, pulls are served with the
// upstream down, and nothing can be pushed into the upstream's namespace.
func TestRegistryPullThrough(t *testing.T) {
	t.Parallel()
	up := newOCIRegistry(t)
	app := newPushed()
	v1img := up.pushImage(t, app, "library/app", "v1", 2, false)
	v2img := up.pushImage(t, app, "library/app", "v2", 1, true)
	other := newPushed()
	otherImg := up.pushImage(t, other, "team/tool", "latest", 1, true)

	srv := harness.Start(t, harness.Options{Args: []string{"--pull-through-ttl", "1s"}})
	rm := srv.JSON(t, http.MethodPost, "remotes/container/container/", map[string]any{"name": "hub", "url": up.srv.URL,
		"upstream_name": "library/app", "username": up.user, "password": up.pass}, http.StatusCreated)
	srv.RunTask(t, http.MethodPost, "distributions/container/container/", map[string]any{"name": "hub", "base_path": "hub",
		"remote": rm["pulp_href"]})
	reg := newV2(srv)

	checkImage(t, reg.ref(t, "hub/library/app:v1"), v1img)
	checkImage(t, reg.ref(t, "hub/team/tool:latest"), otherImg)
	// By digest, before the tag was ever pulled.
	checkImage(t, reg.ref(t, "hub/library/app@"+mustDigest(t, v2img)), v2img)

	// The cache is a repository and a distribution at the full name.
	page := srv.JSON(t, http.MethodGet, "distributions/container/container/?base_path=hub/library/app", nil, http.StatusOK)
	if page["count"].(float64) != 1 {
		t.Fatalf("cache distribution: %v", page)
	}
	// An unknown upstream name stays unknown.
	if _, err := remote.Image(reg.ref(t, "hub/library/nope:v1"), regAuth); err == nil {
		t.Fatal("pulled an image the upstream does not have")
	}
	// Pushing into the upstream's namespace is refused.
	if err := remote.Write(reg.ref(t, "hub/library/mine:v1"), v1img, regAuth); err == nil {
		t.Fatal("pushed under a pull-through distribution")
	}

	// A tag moved upstream is seen once the cached one is older than the TTL.
	moved := up.pushImage(t, app, "library/app", "v1", 1, true)
	time.Sleep(1100 * time.Millisecond)
	checkImage(t, reg.ref(t, "hub/library/app:v1"), moved)

	// With the upstream gone, what was pulled (manifests and blobs) is served
	// from the cache, the failed refresh of a stale tag included.
	up.srv.Close()
	time.Sleep(1100 * time.Millisecond)
	checkImage(t, reg.ref(t, "hub/library/app:v1"), moved)
	checkImage(t, reg.ref(t, "hub/library/app@"+mustDigest(t, v1img)), v1img)
	checkImage(t, reg.ref(t, "hub/team/tool:latest"), otherImg)
	if _, err := remote.Image(reg.ref(t, "hub/library/app:v9"), regAuth); err == nil {
		t.Fatal("pulled a tag nobody pushed")
	}
}
