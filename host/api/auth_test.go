package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pulpo/pulpo/host/api"
	"github.com/pulpo/pulpo/host/artifact"
	"github.com/pulpo/pulpo/host/auth"
	"github.com/pulpo/pulpo/host/coretask"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/db/dbtest"
	"github.com/pulpo/pulpo/host/digest"
	"github.com/pulpo/pulpo/host/storage/fs"
	"github.com/pulpo/pulpo/host/tasks"
)

var authTypes = api.Types{
	Repositories: []api.RepositoryType{{Plugin: "test", Endpoint: "thing", PulpType: "test.thing", ContentTypes: []string{"test.thing"},
		RemoteTypes: []string{"test.thing"}}},
	Remotes: []api.RemoteType{{Plugin: "test", Endpoint: "thing", PulpType: "test.thing", Policies: []string{"immediate"}}},
	Contents: []api.ContentType{{Plugin: "test", Endpoint: "things", PulpType: "test.thing", RepoKeyFields: []string{"relative_path"},
		Fields: []api.Field{{Name: "relative_path", Type: "string", Required: true}}}},
}

// authEnv is an API with authentication and authorization on, as pulpo
// serve runs it, and a log buffer to search for leaked secrets.
type authEnv struct {
	t    *testing.T
	url  string
	db   *db.DB
	logs *bytes.Buffer
}

const adminPassword = "admin-password-1"

func setupAuth(t *testing.T) *authEnv {
	t.Helper()
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d := db.New(dbtest.NewPool(t), log)
	st, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	arts := &artifact.Store{DB: d, Storage: st, TempDir: t.TempDir(), Checksums: digest.DefaultAllowed}
	reg := tasks.NewRegistry()
	coretask.Register(reg, coretask.Deps{DB: d, Storage: st, Artifacts: arts, OrphanProtection: time.Hour})
	node := tasks.NewNode(d, reg, tasks.Options{Name: "test", Workers: 1, API: true, Poll: 100 * time.Millisecond, Logger: log})
	if err := node.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Stop(context.Background()) })
	authn := auth.NewAuthenticator(d, time.Minute)
	srv, err := api.New(api.Deps{DB: d, Storage: st, Artifacts: arts, Tasks: node, Types: authTypes, MaxChunkSize: 1 << 20,
		Logger: log, Auth: &auth.Authorizer{Store: d}, Users: authn})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SyncBuiltinRoles(t.Context(), srv.BuiltinRoles()); err != nil {
		t.Fatal(err)
	}
	if err := auth.Bootstrap(t.Context(), d, auth.Admin{Password: adminPassword}, log); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(authn.Middleware(srv, "/pulp/api/", log))
	t.Cleanup(hs.Close)
	return &authEnv{t: t, url: hs.URL, db: d, logs: logs}
}

type lockedWriter struct {
	mu chan struct{}
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	if l.mu == nil {
		l.mu = make(chan struct{}, 1)
	}
	l.mu <- struct{}{}
	defer func() { <-l.mu }()
	return l.w.Write(p)
}

// as sends a request with Basic credentials (user "" sends none) and
// returns the status and decoded body.
func (e *authEnv) as(user, password, method, path string, body any) (int, map[string]any, http.Header) {
	e.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	if !strings.HasPrefix(path, "/") {
		path = "/pulp/api/v3/" + path
	}
	req, _ := http.NewRequestWithContext(e.t.Context(), method, e.url+path, r)
	req.Header.Set("Content-Type", "application/json")
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if bytes.Contains(raw, []byte("password-")) || bytes.Contains(raw, []byte("$2a$")) {
		e.t.Errorf("%s %s: response carries a credential: %s", method, path, raw)
	}
	var out map[string]any
	json.Unmarshal(raw, &out) //nolint:errcheck // some bodies are empty
	return resp.StatusCode, out, resp.Header
}

func (e *authEnv) must(user, password, method, path string, body any, want int) map[string]any {
	e.t.Helper()
	code, out, _ := e.as(user, password, method, path, body)
	if code != want {
		e.t.Fatalf("%s as %q %s %s: status %d, want %d: %v", user, password, method, path, code, want, out)
	}
	return out
}

func (e *authEnv) admin(method, path string, body any, want int) map[string]any {
	e.t.Helper()
	return e.must("admin", adminPassword, method, path, body, want)
}

func (e *authEnv) waitTask(href string) map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		task := e.admin("GET", href, nil, 200)
		switch task["state"] {
		case "completed", "failed", "canceled":
			return task
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("task %s still %v", href, task["state"])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	e := setupAuth(t)
	code, body, h := e.as("", "", "GET", "repositories/", nil)
	if code != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic") || body["detail"] == nil {
		t.Fatalf("anonymous list: %d %v %v", code, h, body)
	}
	if code, _, h := e.as("admin", "wrong-password", "GET", "repositories/", nil); code != 401 || h.Get("WWW-Authenticate") == "" {
		t.Fatalf("wrong password: %d", code)
	}
	if code, _, _ := e.as("nobody", adminPassword, "GET", "status/", nil); code != 401 {
		t.Fatalf("unknown user on status/: %d (DRF refuses bad credentials everywhere)", code)
	}
	e.must("", "", "GET", "status/", nil, 200)
	doc := e.must("", "", "GET", "docs/api.json", nil, 200)
	docText, _ := json.Marshal(doc)
	for _, op := range []string{"users_list", "users_create", "users_roles_create", "groups_users_create", "groups_roles_list",
		"roles_list", "roles_partial_update", "repositories_test_thing_add_role", "repositories_test_thing_remove_role",
		"repositories_test_thing_list_roles", "repositories_test_thing_my_permissions", "remotes_test_thing_add_role"} {
		if !strings.Contains(string(docText), `"operationId":"`+op+`"`) {
			t.Errorf("the OpenAPI document lacks %s", op)
		}
	}
	if strings.Contains(string(docText), `"password":{"type":"string"}`) {
		t.Errorf("password is not marked write-only")
	}
	e.admin("GET", "repositories/", nil, 200)

	// Users: the password is write-only, and checked for length.
	e.admin("POST", "users/", map[string]any{"username": "alice", "password": "short"}, 400)
	e.admin("POST", "users/", map[string]any{"username": "bad name!", "password": "alice-password-1"}, 400)
	u := e.admin("POST", "users/", map[string]any{"username": "alice", "password": "alice-password-1", "email": "a@example.com"}, 201)
	if _, ok := u["password"]; ok {
		t.Fatalf("user response has a password: %v", u)
	}
	if hf := u["hidden_fields"].([]any)[0].(map[string]any); hf["name"] != "password" || hf["is_set"] != true {
		t.Fatalf("hidden_fields: %v", u["hidden_fields"])
	}
	e.admin("POST", "users/", map[string]any{"username": "alice", "password": "alice-password-1"}, 400)
	e.must("alice", "alice-password-1", "GET", "status/", nil, 200)
	// alice may not see users; a password change takes effect at once
	// despite the credential cache; an inactive user cannot log in.
	e.must("alice", "alice-password-1", "GET", "users/", nil, 403)
	e.admin("PATCH", u["pulp_href"].(string), map[string]any{"password": "alice-password-2"}, 200)
	e.must("alice", "alice-password-1", "GET", "repositories/", nil, 401)
	e.must("alice", "alice-password-2", "GET", "repositories/", nil, 200)
	e.admin("PATCH", u["pulp_href"].(string), map[string]any{"is_active": false}, 200)
	e.must("alice", "alice-password-2", "GET", "repositories/", nil, 401)

	if strings.Contains(e.logs.String(), "alice-password") || strings.Contains(e.logs.String(), adminPassword) {
		t.Fatalf("a password reached the log:\n%s", e.logs.String())
	}
}

func TestRepositoryRoles(t *testing.T) {
	t.Parallel()
	e := setupAuth(t)
	for _, name := range []string{"alice", "bob", "carol"} {
		e.admin("POST", "users/", map[string]any{"username": name, "password": name + "-password-1"}, 201)
	}
	alice := func(method, path string, body any, want int) map[string]any {
		t.Helper()
		return e.must("alice", "alice-password-1", method, path, body, want)
	}
	bob := func(method, path string, body any, want int) map[string]any {
		t.Helper()
		return e.must("bob", "bob-password-1", method, path, body, want)
	}
	const repos = "repositories/test/thing/"

	// Without the creator role alice can list (nothing) but not create.
	alice("POST", repos, map[string]any{"name": "a"}, 403)
	if l := alice("GET", repos, nil, 200); l["count"].(float64) != 0 {
		t.Fatalf("alice lists %v", l)
	}
	users := e.admin("GET", "users/?username=alice", nil, 200)["results"].([]any)
	aliceHref := users[0].(map[string]any)["pulp_href"].(string)
	e.admin("POST", aliceHref+"roles/", map[string]any{"role": "test.thingrepository_creator", "content_object": nil}, 201)
	e.admin("POST", aliceHref+"roles/", map[string]any{"role": "test.thingrepository_creator", "content_object": nil}, 400)
	e.admin("POST", aliceHref+"roles/", map[string]any{"role": "no.such_role", "content_object": nil}, 400)

	// The creator becomes the owner of what it creates.
	mine := alice("POST", repos, map[string]any{"name": "mine"}, 201)["pulp_href"].(string)
	other := e.admin("POST", repos, map[string]any{"name": "other"}, 201)["pulp_href"].(string)
	perms := alice("GET", mine+"my_permissions/", nil, 200)["permissions"].([]any)
	// The owner role's 8 permissions on the object, plus add held globally.
	if len(perms) != 9 || perms[0] != "test.add_thingrepository" {
		t.Fatalf("owner permissions: %v", perms)
	}
	if l := alice("GET", repos, nil, 200); l["count"].(float64) != 1 || l["results"].([]any)[0].(map[string]any)["pulp_href"] != mine {
		t.Fatalf("alice's list is not scoped: %v", l)
	}
	if l := alice("GET", "repositories/", nil, 200); l["count"].(float64) != 1 {
		t.Fatalf("alice's generic list is not scoped: %v", l)
	}
	if l := e.admin("GET", repos, nil, 200); l["count"].(float64) != 2 {
		t.Fatalf("admin sees %v", l)
	}
	alice("GET", other, nil, 404)
	alice("PATCH", other, map[string]any{"description": "x"}, 404)
	alice("GET", other+"versions/", nil, 404)
	alice("GET", other+"my_permissions/", nil, 404)
	alice("GET", mine+"versions/0/", nil, 200)

	// Bob sees nothing of alice's until she makes him a viewer.
	bob("GET", mine, nil, 404)
	alice("POST", mine+"add_role/", map[string]any{"role": "test.thingremote_viewer", "users": []string{"bob"}}, 400)
	alice("POST", mine+"add_role/", map[string]any{"role": "test.thingrepository_viewer", "users": []string{"nobody"}}, 400)
	alice("POST", mine+"add_role/", map[string]any{"role": "test.thingrepository_viewer", "users": []string{"bob"}}, 201)
	bob("GET", mine, nil, 200)
	bob("PATCH", mine, map[string]any{"description": "x"}, 403)
	bob("DELETE", mine, nil, 403)
	bob("POST", mine+"modify/", map[string]any{}, 403)
	bob("GET", mine+"list_roles/", nil, 403)
	bob("POST", mine+"add_role/", map[string]any{"role": "test.thingrepository_owner", "users": []string{"bob"}}, 403)
	roles := alice("GET", mine+"list_roles/", nil, 200)["roles"].([]any)
	got := map[string]any{}
	for _, r := range roles {
		m := r.(map[string]any)
		got[m["role"].(string)] = m["users"]
	}
	if len(got) != 2 || got["test.thingrepository_owner"].([]any)[0] != "alice" || got["test.thingrepository_viewer"].([]any)[0] != "bob" {
		t.Fatalf("list_roles: %v", roles)
	}
	if l := bob("GET", repos, nil, 200); l["count"].(float64) != 1 {
		t.Fatalf("bob's list: %v", l)
	}

	// Groups: a role given to a group reaches its members.
	g := e.admin("POST", "groups/", map[string]any{"name": "readers"}, 201)
	e.admin("POST", g["pulp_href"].(string)+"users/", map[string]any{"username": "carol"}, 201)
	e.must("carol", "carol-password-1", "GET", other, nil, 404)
	e.admin("POST", other+"add_role/", map[string]any{"role": "test.thingrepository_viewer", "groups": []string{"readers"}}, 201)
	e.must("carol", "carol-password-1", "GET", other, nil, 200)
	if l := e.must("carol", "carol-password-1", "GET", repos, nil, 200); l["count"].(float64) != 1 {
		t.Fatalf("carol's list: %v", l)
	}
	e.must("carol", "carol-password-1", "GET", "groups/", nil, 200)

	// Removing the role takes the access away again.
	alice("POST", mine+"remove_role/", map[string]any{"role": "test.thingrepository_viewer", "users": []string{"bob"}}, 201)
	alice("POST", mine+"remove_role/", map[string]any{"role": "test.thingrepository_viewer", "users": []string{"bob"}}, 400)
	bob("GET", mine, nil, 404)

	// Naming an object one may not view in a write is refused, naming the
	// field, even with the right to create.
	e.admin("POST", "users/"+bobID(e)+"/roles/", map[string]any{"role": "test.thingrepository_creator", "content_object": nil}, 201)
	code, body, _ := e.as("bob", "bob-password-1", "POST", repos, map[string]any{"name": "b", "remote": nil})
	if code != 201 {
		t.Fatalf("bob creates: %d %v", code, body)
	}
	remote := e.admin("POST", "remotes/test/thing/", map[string]any{"name": "rm", "url": "http://example.com/"}, 201)["pulp_href"].(string)
	code, body, _ = e.as("bob", "bob-password-1", "POST", repos, map[string]any{"name": "c", "remote": remote})
	if code != 403 || body["remote"] == nil {
		t.Fatalf("bob uses a remote he cannot view: %d %v", code, body)
	}

	// Tasks belong to who dispatched them.
	task := alice("PATCH", mine, map[string]any{"description": "mine"}, 202)["task"].(string)
	e.waitTask(task)
	alice("GET", task, nil, 200)
	bob("GET", task, nil, 404)
	if l := bob("GET", "tasks/", nil, 200); l["count"].(float64) != 0 {
		t.Fatalf("bob sees tasks: %v", l)
	}
	if l := alice("GET", "tasks/", nil, 200); l["count"].(float64) != 1 {
		t.Fatalf("alice's tasks: %v", l)
	}
	alice("DELETE", mine, nil, 202)
}

func TestRolesAndUsersEndpoints(t *testing.T) {
	t.Parallel()
	e := setupAuth(t)
	e.admin("POST", "users/", map[string]any{"username": "bob", "password": "bob-password-1"}, 201)
	bob := func(method, path string, body any, want int) map[string]any {
		t.Helper()
		return e.must("bob", "bob-password-1", method, path, body, want)
	}
	l := bob("GET", "roles/?name=core.task_owner", nil, 200)
	if l["count"].(float64) != 1 {
		t.Fatalf("roles: %v", l)
	}
	locked := l["results"].([]any)[0].(map[string]any)
	if locked["locked"] != true {
		t.Fatalf("built-in role not locked: %v", locked)
	}
	e.admin("PATCH", locked["pulp_href"].(string), map[string]any{"description": "x"}, 403)
	e.admin("DELETE", locked["pulp_href"].(string), nil, 403)
	bob("POST", "roles/", map[string]any{"name": "custom", "permissions": []string{"test.view_thingrepository"}}, 403)
	e.admin("POST", "roles/", map[string]any{"name": "custom", "permissions": []string{"not a permission"}}, 400)
	custom := e.admin("POST", "roles/", map[string]any{"name": "custom", "permissions": []string{"test.view_thingrepository"}}, 201)
	e.admin("PATCH", custom["pulp_href"].(string), map[string]any{"permissions": []string{"test.view_thingrepository", "test.change_thingrepository"}}, 200)
	bob("GET", "users/", nil, 403)
	bob("POST", "users/", map[string]any{"username": "eve", "password": "eve-password-1"}, 403)
	users := e.admin("GET", "users/?username=bob", nil, 200)["results"].([]any)
	bobHref := users[0].(map[string]any)["pulp_href"].(string)
	bob("PATCH", bobHref, map[string]any{"is_superuser": true}, 403)
	bob("POST", bobHref+"roles/", map[string]any{"role": "custom", "content_object": nil}, 403)
	// A custom role held globally gives its permissions on every object.
	repo := e.admin("POST", "repositories/test/thing/", map[string]any{"name": "r"}, 201)["pulp_href"].(string)
	bob("GET", repo, nil, 404)
	a := e.admin("POST", bobHref+"roles/", map[string]any{"role": "custom", "content_object": nil}, 201)
	bob("GET", repo, nil, 200)
	if l := bob("GET", "repositories/test/thing/", nil, 200); l["count"].(float64) != 1 {
		t.Fatalf("a global view role lists everything: %v", l)
	}
	e.admin("GET", a["pulp_href"].(string), nil, 200)
	e.admin("DELETE", a["pulp_href"].(string), nil, 204)
	bob("GET", repo, nil, 404)
	// An object assignment must name an existing object the role is about.
	e.admin("POST", bobHref+"roles/", map[string]any{"role": "custom", "content_object": "/pulp/api/v3/repositories/test/thing/0190a0b0-0000-7000-8000-000000000000/"}, 400)
	e.admin("POST", bobHref+"roles/", map[string]any{"role": "core.task_owner", "content_object": repo}, 400)
	e.admin("POST", bobHref+"roles/", map[string]any{"role": "custom", "content_object": repo}, 201)
	bob("GET", repo, nil, 200)
	if l := e.admin("GET", bobHref+"roles/", nil, 200); l["count"].(float64) != 1 ||
		l["results"].([]any)[0].(map[string]any)["content_object"] != repo {
		t.Fatalf("bob's roles: %v", l)
	}
	// Deleting the object deletes its assignments.
	task := e.admin("DELETE", repo, nil, 202)["task"].(string)
	e.waitTask(task)
	if l := e.admin("GET", bobHref+"roles/", nil, 200); l["count"].(float64) != 0 {
		t.Fatalf("assignments outlive their object: %v", l)
	}
	e.admin("DELETE", bobHref, nil, 204)
	bob("GET", "status/", nil, 401)
}

func bobID(e *authEnv) string {
	e.t.Helper()
	users := e.admin("GET", "users/?username=bob", nil, 200)["results"].([]any)
	return users[0].(map[string]any)["id"].(string)
}
