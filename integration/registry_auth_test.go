package integration

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/pulpo/pulpo/integration/harness"
)

// statusOf is the HTTP status of a go-containerregistry error (0 when none).
func statusOf(err error) int {
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode
	}
	return 0
}

// TestRegistryTokenAuth runs Docker token authentication end to end: clients follow the
// registry's challenge to /token with Basic credentials and get what their roles allow.
func TestRegistryTokenAuth(t *testing.T) {
	t.Parallel()
	srv := harness.Start(t, harness.Options{})
	reg := newV2(srv)
	admin := srv.Client
	const bobPW = "bob-secret-pw-1"
	bobUser := admin.JSON(t, "POST", "users/", map[string]any{"username": "bob", "password": bobPW}, http.StatusCreated)
	bob := remote.WithAuth(&authn.Basic{Username: "bob", Password: bobPW})
	anon := remote.WithAuth(authn.Anonymous)

	// The admin pushes and pulls through tokens.
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(reg.ref(t, "auth/app:v1"), img, regAuth); err != nil {
		t.Fatalf("admin push: %v", err)
	}
	if _, err := remote.Image(reg.ref(t, "auth/app:v1"), regAuth); err != nil {
		t.Fatalf("admin pull: %v", err)
	}
	// Anyone pulls a public distribution; nobody anonymous pushes.
	if _, err := remote.Image(reg.ref(t, "auth/app:v1"), anon); err != nil {
		t.Fatalf("anonymous pull of a public repository: %v", err)
	}
	if err := remote.Write(reg.ref(t, "auth/anon:v1"), img, anon); statusOf(err) != http.StatusUnauthorized {
		t.Fatalf("anonymous push: %v", err)
	}
	resp, _ := srv.Anonymous().Do("POST", "/v2/auth/anon/blobs/uploads/", nil, nil)
	want := `Bearer realm="http://` + reg.host + `/token",service="` + reg.host + `",scope="repository:auth/anon:pull,push"`
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != want {
		t.Fatalf("anonymous upload: %d %q, want %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), want)
	}
	// Forged tokens are refused.
	resp, _ = srv.Anonymous().Do("GET", "/v2/auth/app/tags/list", nil, http.Header{"Authorization": {"Bearer eyJhbGciOiJIUzI1NiJ9.e30.AAAA"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("public tags list with a forged token: %d", resp.StatusCode) // public pulls need no token
	}
	resp, _ = srv.Anonymous().Do("POST", "/v2/auth/app/blobs/uploads/", nil, http.Header{"Authorization": {"Bearer eyJhbGciOiJIUzI1NiJ9.e30.AAAA"}})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("push with a forged token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	// A user without roles may not push; once the distribution is private, not pull.
	if err := remote.Write(reg.ref(t, "auth/app:v2"), img, bob); statusOf(err) != http.StatusUnauthorized && statusOf(err) != http.StatusForbidden {
		t.Fatalf("bob push without roles: %v", err)
	}
	var dists struct {
		Results []struct {
			Href string `json:"pulp_href"`
		} `json:"results"`
	}
	admin.Decode(t, "GET", "distributions/container/container/?base_path=auth/app", nil, http.StatusOK, &dists)
	if len(dists.Results) != 1 {
		t.Fatalf("distribution of auth/app: %+v", dists)
	}
	dist := dists.Results[0].Href
	admin.RunTask(t, "PATCH", dist, map[string]any{"private": true})
	// The registry's cached resolution is flushed by a NOTIFY that reaches the
	// server a moment after the task ends, so the change takes effect within
	// milliseconds, not at once.
	for who, opt := range map[string]remote.Option{"anonymous": anon, "bob": bob} {
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, err := remote.Image(reg.ref(t, "auth/app:v1"), opt)
			if statusOf(err) == http.StatusUnauthorized {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s pull of a private distribution: %v", who, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// The viewer role lets bob pull, the owner role push.
	admin.JSON(t, "POST", bobUser["pulp_href"].(string)+"roles/", map[string]any{"role": "container.containerdistribution_viewer", "content_object": dist}, http.StatusCreated)
	if _, err := remote.Image(reg.ref(t, "auth/app:v1"), bob); err != nil {
		t.Fatalf("viewer pull: %v", err)
	}
	if err := remote.Write(reg.ref(t, "auth/app:v2"), img, bob); err == nil {
		t.Fatal("viewer pushed")
	}
	admin.JSON(t, "POST", bobUser["pulp_href"].(string)+"roles/", map[string]any{"role": "container.containerdistribution_owner", "content_object": dist}, http.StatusCreated)
	if err := remote.Write(reg.ref(t, "auth/app:v2"), img, bob); err != nil {
		t.Fatalf("owner push: %v", err)
	}
}
