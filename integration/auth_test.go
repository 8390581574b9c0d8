package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pulpo/pulpo/integration/harness"
)

// TestAuthEveryRouteFamily runs the real binary with authentication on and
// tries every route family anonymously (401), with a wrong password (401),
// as a user without roles (403, or 404 for objects it may not view, and
// scoped lists) and as the user holding the role (success). Objects alice
// creates, synchronously or through tasks, become hers.
func TestAuthEveryRouteFamily(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	few := fixture(t, root, "authfew", smallFiles("authfew", 2), nil)
	hs := httptest.NewServer(http.FileServer(http.Dir(root)))
	t.Cleanup(hs.Close)
	srv := harness.Start(t, harness.Options{})
	admin := srv.Client
	anon := srv.Anonymous()
	wrong := srv.As(harness.AdminUsername, "not-the-admin-password")

	const alicePW, bobPW = "alice-secret-pw-1", "bob-secret-pw-1"
	for name, pw := range map[string]string{"alice": alicePW, "bob": bobPW} {
		u := admin.JSON(t, "POST", "users/", map[string]any{"username": name, "password": pw}, http.StatusCreated)
		if _, ok := u["password"]; ok {
			t.Fatalf("user response carries the password: %v", u)
		}
		if name == "alice" {
			for _, role := range []string{"file.filerepository_creator", "file.fileremote_creator", "file.filepublication_creator",
				"file.filedistribution_creator", "core.headercontentguard_creator", "core.rbaccontentguard_creator"} {
				admin.JSON(t, "POST", u["pulp_href"].(string)+"roles/", map[string]any{"role": role, "content_object": nil}, http.StatusCreated)
			}
		}
	}
	alice, bob := srv.As("alice", alicePW), srv.As("bob", bobPW)

	// Alice builds a repository, synced, published, distributed and guarded;
	// the admin builds objects of its own nobody else sees.
	rm := alice.JSON(t, "POST", "remotes/file/file/", map[string]any{"name": "a-remote", "url": hs.URL + few}, http.StatusCreated)["pulp_href"].(string)
	repo := alice.JSON(t, "POST", "repositories/file/file/", map[string]any{"name": "a-repo", "remote": rm}, http.StatusCreated)["pulp_href"].(string)
	syncTask := alice.RunTask(t, "POST", repo+"sync/", map[string]any{})
	pub := one(t, created(alice.RunTask(t, "POST", "publications/file/file/", map[string]any{"repository": repo}), "/publications/"))
	guard := alice.JSON(t, "POST", "contentguards/core/header/", map[string]any{"name": "a-guard", "header_name": "x-k", "header_value": "v"},
		http.StatusCreated)["pulp_href"].(string)
	dist := one(t, created(alice.RunTask(t, "POST", "distributions/file/file/",
		map[string]any{"name": "a-dist", "base_path": "auth/a", "publication": pub}), "/distributions/"))
	upload := alice.JSON(t, "POST", "uploads/", map[string]any{"size": 3}, http.StatusCreated)["pulp_href"].(string)
	admin.JSON(t, "POST", "remotes/file/file/", map[string]any{"name": "z-remote", "url": hs.URL + few}, http.StatusCreated)
	adminRepo := admin.JSON(t, "POST", "repositories/file/file/", map[string]any{"name": "z-repo"}, http.StatusCreated)["pulp_href"].(string)
	admin.JSON(t, "POST", "uploads/", map[string]any{"size": 3}, http.StatusCreated)
	admin.RunTask(t, "PATCH", adminRepo, map[string]any{"description": "the admin's"})
	artifacts := admin.JSON(t, "GET", "artifacts/", nil, http.StatusOK)["results"].([]any)
	artifact := artifacts[0].(map[string]any)["pulp_href"].(string)

	type attempt struct {
		method, path string
		body         any
		bob, alice   int // statuses; anonymous and wrong passwords always get 401
	}
	for _, c := range []attempt{
		{"GET", "remotes/file/file/", nil, 200, 200},
		{"GET", rm, nil, 404, 200},
		{"PATCH", rm, map[string]any{"tls_validation": true}, 404, 202},
		{"POST", "remotes/file/file/", map[string]any{"name": "b", "url": "http://x/"}, 403, 201},
		{"GET", "repositories/", nil, 200, 200},
		{"GET", repo, nil, 404, 200},
		{"POST", repo + "sync/", map[string]any{}, 404, 202},
		{"POST", repo + "modify/", map[string]any{}, 404, 202},
		{"POST", "repositories/file/file/", map[string]any{"name": "b"}, 403, 201},
		{"GET", repo + "versions/", nil, 404, 200},
		{"GET", repo + "versions/1/", nil, 404, 200},
		{"GET", repo + "list_roles/", nil, 404, 200},
		{"GET", repo + "my_permissions/", nil, 404, 200},
		{"GET", "content/file/files/", nil, 200, 200},
		{"GET", "content/", nil, 200, 200},
		{"POST", "content/file/files/", map[string]any{"relative_path": "x.txt", "artifact": artifact, "repository": adminRepo}, 403, 403},
		{"GET", "artifacts/", nil, 200, 200},
		{"GET", artifact, nil, 200, 200},
		{"DELETE", artifact, nil, 403, 403},
		{"GET", "uploads/", nil, 200, 200},
		{"GET", upload, nil, 404, 200},
		{"POST", "uploads/", map[string]any{"size": 1}, 201, 201},
		{"GET", "publications/file/file/", nil, 200, 200},
		{"GET", pub, nil, 404, 200},
		{"POST", "publications/file/file/", map[string]any{"repository": repo}, 403, 202},
		{"POST", "publications/file/file/", map[string]any{"repository": adminRepo}, 403, 403},
		{"GET", "distributions/", nil, 200, 200},
		{"GET", dist, nil, 404, 200},
		{"PATCH", dist, map[string]any{"hidden": false}, 404, 202},
		{"GET", "contentguards/", nil, 200, 200},
		{"GET", guard, nil, 404, 200},
		{"PATCH", guard, map[string]any{"description": "d"}, 404, 200},
		{"GET", "tasks/", nil, 200, 200},
		{"GET", syncTask["pulp_href"].(string), nil, 404, 200},
		{"POST", "orphans/cleanup/", map[string]any{}, 403, 403},
		{"GET", "users/", nil, 403, 403},
		{"POST", "users/", map[string]any{"username": "eve", "password": "eve-password-1"}, 403, 403},
		{"GET", "roles/", nil, 200, 200},
		{"POST", "roles/", map[string]any{"name": "r", "permissions": []string{}}, 403, 403},
		{"GET", "groups/", nil, 200, 200},
		{"POST", "groups/", map[string]any{"name": "g"}, 403, 403},
	} {
		name := c.method + " " + strings.TrimPrefix(c.path, harness.APIRoot)
		for who, cl := range map[string]*harness.Client{"anonymous": anon, "wrong password": wrong} {
			resp, body := cl.Do(c.method, c.path, c.body, nil)
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
				t.Errorf("%s %s: %d %s, want 401 with a Basic challenge", who, name, resp.StatusCode, body)
			}
		}
		for _, u := range []struct {
			who  string
			cl   *harness.Client
			want int
		}{{"bob", bob, c.bob}, {"alice", alice, c.alice}} {
			resp, body := u.cl.Do(c.method, c.path, c.body, nil)
			if resp.StatusCode != u.want {
				t.Errorf("%s %s: %d %s, want %d", u.who, name, resp.StatusCode, body, u.want)
			}
			if resp.StatusCode == http.StatusAccepted { // let it finish: the counts below depend on it
				var task struct{ Task string }
				if err := json.Unmarshal(body, &task); err != nil {
					t.Fatal(err)
				}
				u.cl.WaitTask(t, task.Task)
			}
		}
	}

	// Lists are scoped: bob sees none of alice's objects, alice only hers,
	// the admin everything.
	count := func(cl *harness.Client, path string) float64 {
		t.Helper()
		return cl.JSON(t, "GET", path, nil, http.StatusOK)["count"].(float64)
	}
	for path, want := range map[string][3]float64{
		"remotes/file/file/":      {0, 2, 3}, // alice made "b" above
		"repositories/file/file/": {0, 2, 3},
		"publications/file/file/": {0, 2, 2}, // and a second publication
		"distributions/":          {0, 1, 1},
		"contentguards/":          {0, 1, 1},
		"uploads/":                {1, 2, 4},
	} {
		for i, cl := range []*harness.Client{bob, alice, admin} {
			if got := count(cl, path); got != want[i] {
				t.Errorf("%s as %s: count %v, want %v", path, []string{"bob", "alice", "admin"}[i], got, want[i])
			}
		}
	}
	if n := count(bob, "tasks/"); n != 0 {
		t.Errorf("bob sees %v tasks", n)
	}
	if a, ad := count(alice, "tasks/"), count(admin, "tasks/"); a == 0 || a >= ad {
		t.Errorf("tasks: alice %v, admin %v", a, ad)
	}

	// The creator owns what it made, tasks included: list_roles names
	// alice as owner of the distribution a task created.
	roles := alice.JSON(t, "GET", dist+"list_roles/", nil, http.StatusOK)["roles"].([]any)
	if len(roles) != 1 || fmt.Sprint(roles[0]) != "map[groups:[] role:file.filedistribution_owner users:[alice]]" {
		t.Errorf("distribution roles: %v", roles)
	}
	// Sharing: alice makes bob a viewer of her repository.
	alice.JSON(t, "POST", repo+"add_role/", map[string]any{"role": "file.filerepository_viewer", "users": []string{"bob"}}, http.StatusCreated)
	bob.JSON(t, "GET", repo, nil, http.StatusOK)
	bob.JSON(t, "PATCH", repo, map[string]any{"description": "x"}, http.StatusForbidden)
	if n := count(bob, "repositories/file/file/"); n != 1 {
		t.Errorf("bob's repositories after sharing: %v", n)
	}

	// Status, the API document and the content app stay public; bad
	// credentials are ignored by the content app, as Pulp does.
	anon.JSON(t, "GET", "status/", nil, http.StatusOK)
	if resp, _ := anon.GET("docs/api.json", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("docs/api.json anonymously: %d", resp.StatusCode)
	}
	for _, cl := range []*harness.Client{anon, wrong} {
		if resp, body := cl.GET("/pulp/content/auth/a/authfew/0000.txt", nil); resp.StatusCode != http.StatusOK || string(body) != "authfew file 0\n" {
			t.Errorf("content app: %d %q", resp.StatusCode, body)
		}
	}

	// A core.rbac guard lets through the users holding download on it: its
	// creator (owner), then bob once alice makes him a downloader.
	rbac := alice.JSON(t, "POST", "contentguards/core/rbac/", map[string]any{"name": "a-rbac"}, http.StatusCreated)["pulp_href"].(string)
	alice.RunTask(t, "POST", "distributions/file/file/", map[string]any{"name": "a-guarded", "base_path": "auth/g", "publication": pub, "content_guard": rbac})
	const guarded = "/pulp/content/auth/g/authfew/0001.txt"
	for who, cl := range map[string]*harness.Client{"anonymous": anon, "bob": bob, "wrong password": wrong} {
		if resp, body := cl.GET(guarded, nil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s through the rbac guard: %d %s", who, resp.StatusCode, body)
		}
	}
	if resp, body := alice.GET(guarded, nil); resp.StatusCode != http.StatusOK || string(body) != "authfew file 1\n" {
		t.Errorf("alice through her rbac guard: %d %q", resp.StatusCode, body)
	}
	alice.JSON(t, "POST", rbac+"add_role/", map[string]any{"role": "core.rbaccontentguard_downloader", "users": []string{"bob"}}, http.StatusCreated)
	if resp, body := bob.GET(guarded, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("bob as downloader: %d %s", resp.StatusCode, body)
	}

	// No credential is returned or logged.
	_, body := admin.GET("users/", nil)
	log := srv.Process().Log()
	for _, secret := range []string{alicePW, bobPW, harness.AdminPassword, "$2a$"} {
		if strings.Contains(string(body), secret) {
			t.Errorf("users/ returns %q", secret)
		}
		if strings.Contains(log, secret) {
			t.Errorf("the server log holds %q", secret)
		}
	}
	for _, h := range []string{alice.Header.Get("Authorization"), admin.Header.Get("Authorization")} {
		if strings.Contains(log, strings.TrimPrefix(h, "Basic ")) {
			t.Errorf("the server log holds an Authorization header")
		}
	}
}
