package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/api"
	"github.com/pulpo/pulpo/host/artifact"
	"github.com/pulpo/pulpo/host/coretask"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/db/dbtest"
	"github.com/pulpo/pulpo/host/digest"
	"github.com/pulpo/pulpo/host/storage/fs"
	"github.com/pulpo/pulpo/host/tasks"
)

// remoteTypes are testTypes plus two remote types: test.thing (the type of
// the test repositories, with a plugin field) and test.lazy, which allows
// only two policies.
var remoteTypes = api.Types{
	Repositories: testTypes.Repositories,
	Contents:     testTypes.Contents,
	Remotes: []api.RemoteType{
		{Plugin: "test", Endpoint: "thing", PulpType: "test.thing", Fields: []api.Field{{Name: "manifest_name", Type: "string"}}},
		{Plugin: "test", Endpoint: "lazy", PulpType: "test.lazy", Policies: []string{"on_demand", "streamed"}},
	},
}

// lockedBuffer collects log output written from many goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// remoteEnv records every response body and every log line, at debug level,
// so a test can check that no secret ever leaves the server.
type remoteEnv struct {
	*env
	logs   *lockedBuffer
	mu     sync.Mutex
	bodies []string
}

// setupRemotes is setup with remoteTypes and a debug log captured.
func setupRemotes(t *testing.T) *remoteEnv {
	t.Helper()
	logs := &lockedBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	d := db.New(dbtest.NewPool(t), log)
	root := t.TempDir()
	st, err := fs.New(filepath.Join(root, "media"))
	if err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(root, "tmp")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	arts := &artifact.Store{DB: d, Storage: st, TempDir: work, Checksums: digest.DefaultAllowed}
	reg := tasks.NewRegistry()
	coretask.Register(reg, coretask.Deps{DB: d, Storage: st, Artifacts: arts, OrphanProtection: 24 * time.Hour})
	node := tasks.NewNode(d, reg, tasks.Options{Name: "test", Workers: 2, API: true, Poll: 100 * time.Millisecond, Logger: log})
	if err := node.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Stop(context.Background()) })
	srv, err := api.New(api.Deps{DB: d, Storage: st, Artifacts: arts, Tasks: node, Types: remoteTypes,
		Versions: map[string]string{"core": "0.1.0", "test": "1.0"}, MaxChunkSize: 1 << 20, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &remoteEnv{env: &env{t: t, url: hs.URL, db: d, storage: filepath.Join(root, "media")}, logs: logs}
}

// call sends v as JSON, checks the status and records the raw body.
func (e *remoteEnv) call(method, path string, v any, want int) map[string]any {
	e.t.Helper()
	var body io.Reader
	if s, ok := v.(string); ok {
		body = strings.NewReader(s)
	} else if v != nil {
		b, _ := json.Marshal(v)
		body = bytes.NewReader(b)
	}
	resp, b := e.do(method, path, body, http.Header{"Content-Type": {"application/json"}})
	e.mu.Lock()
	e.bodies = append(e.bodies, string(b))
	e.mu.Unlock()
	if resp.StatusCode != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	out := map[string]any{}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			e.t.Fatalf("%s %s: body is not a JSON object: %s", method, path, b)
		}
	}
	return out
}

// task expects 202 {"task": href} and waits for the task to end in state.
func (e *remoteEnv) task(method, path string, body any, state string) map[string]any {
	e.t.Helper()
	resp := e.call(method, path, body, 202)
	if len(resp) != 1 || resp["task"] == nil {
		e.t.Fatalf("202 body %v, want exactly {\"task\": href}", resp)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		t := e.call("GET", resp["task"].(string), nil, 200)
		switch t["state"] {
		case "completed", "failed", "canceled":
			if t["state"] != state {
				e.t.Fatalf("task %s ended %s (want %s): %v", t["name"], t["state"], state, t["error"])
			}
			return t
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("task %s still %s", resp["task"], t["state"])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkTask checks a finished task's name, whether it was dispatched as
// immediate, and that it held exactly the resource exclusive.
func (e *remoteEnv) checkTask(task map[string]any, name string, immediate bool, exclusive string) {
	e.t.Helper()
	h := task["pulp_href"].(string)
	id, err := uuid.Parse(h[len(h)-37 : len(h)-1])
	if err != nil {
		e.t.Fatal(err)
	}
	row, err := e.db.GetTask(e.t.Context(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	if row.Name != name || row.Immediate != immediate || strings.Join(row.ExclusiveResources, ",") != exclusive || len(row.SharedResources) != 0 {
		e.t.Fatalf("task %s: immediate %v, exclusive %v, shared %v; want %s, %v, [%s]", row.Name, row.Immediate,
			row.ExclusiveResources, row.SharedResources, name, immediate, exclusive)
	}
}

// noSecrets fails if any recorded body or log line holds one of secrets.
func (e *remoteEnv) noSecrets(secrets ...string) {
	e.t.Helper()
	e.mu.Lock()
	bodies := strings.Join(e.bodies, "\n")
	e.mu.Unlock()
	if len(bodies) < 1000 {
		e.t.Fatalf("only %d bytes of responses recorded", len(bodies))
	}
	logs := e.logs.String()
	for _, s := range secrets {
		if strings.Contains(bodies, s) {
			e.t.Errorf("secret %q appears in a response body", s)
		}
		if strings.Contains(logs, s) {
			e.t.Errorf("secret %q appears in the log", s)
		}
	}
}

func hidden(t *testing.T, remote map[string]any) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	list, ok := remote["hidden_fields"].([]any)
	if !ok {
		t.Fatalf("no hidden_fields in %v", remote)
	}
	for _, h := range list {
		m := h.(map[string]any)
		out[m["name"].(string)] = m["is_set"].(bool)
	}
	if len(out) != 5 {
		t.Fatalf("hidden_fields %v, want the 5 write-only fields", list)
	}
	return out
}

func count(t *testing.T, page map[string]any) float64 {
	t.Helper()
	n, ok := page["count"].(float64)
	if !ok {
		t.Fatalf("not a page: %v", page)
	}
	return n
}

// Secret values sent in the tests; none may come back or be logged.
var remoteSecretValues = map[string]string{
	"client_key": "KEY-9f1c2e", "username": "USER-51ab7d", "password": "PASS-c3d9e0",
	"proxy_username": "PUSER-77e1a4", "proxy_password": "PPASS-0b6f28",
}

func TestRemoteLifecycle(t *testing.T) {
	t.Parallel()
	e := setupRemotes(t)
	remotes := "remotes/test/thing/"
	body := map[string]any{
		"name": "r1", "url": "https://example.com/repo/PULP_MANIFEST", "pulp_labels": map[string]string{"env": "dev"},
		"ca_cert": "CA PEM", "client_cert": "CERT PEM", "tls_validation": false, "proxy_url": "http://proxy:3128",
		"policy": "on_demand", "download_concurrency": 5, "max_retries": 0, "total_timeout": 30.5, "connect_timeout": 0,
		"sock_connect_timeout": 2, "sock_read_timeout": 3.25, "headers": []map[string]string{{"X-Trace": "on"}, {"Accept": "*/*"}},
		"rate_limit": 7, "manifest_name": "MANIFEST",
	}
	for k, v := range remoteSecretValues {
		body[k] = v
	}
	r1 := e.call("POST", remotes, body, 201)
	h1, _ := r1["pulp_href"].(string)
	if !strings.HasPrefix(h1, "/pulp/api/v3/remotes/test/thing/") || r1["prn"] != "prn:test.thingremote:"+h1[len(h1)-37:len(h1)-1] {
		t.Fatalf("href %q prn %v", h1, r1["prn"])
	}
	for k, v := range body {
		if _, secret := remoteSecretValues[k]; secret {
			if _, shown := r1[k]; shown {
				t.Errorf("write-only %s is in the response", k)
			}
			continue
		}
		want, _ := json.Marshal(v)
		got, _ := json.Marshal(r1[k])
		if k == "sock_connect_timeout" || k == "connect_timeout" {
			want, _ = json.Marshal(float64(v.(int)))
		}
		if string(got) != string(want) {
			t.Errorf("%s = %s, want %s", k, got, want)
		}
	}
	for name, set := range hidden(t, r1) {
		if !set {
			t.Errorf("hidden field %s not set", name)
		}
	}
	for _, k := range []string{"pulp_created", "pulp_last_updated"} {
		if _, err := time.Parse(time.RFC3339Nano, r1[k].(string)); err != nil {
			t.Errorf("%s = %v", k, r1[k])
		}
	}
	if read := e.call("GET", h1, nil, 200); read["name"] != "r1" || read["url"] != body["url"] || read["manifest_name"] != "MANIFEST" {
		t.Fatalf("read %v", read)
	}

	// Defaults, as Pulp's serializer has them.
	r2 := e.call("POST", remotes, map[string]any{"name": "r2", "url": "file:///srv/repo/"}, 201)
	h2 := r2["pulp_href"].(string)
	for k, want := range map[string]any{"tls_validation": true, "policy": "immediate", "download_concurrency": nil,
		"max_retries": nil, "rate_limit": nil, "total_timeout": nil, "proxy_url": nil, "ca_cert": nil, "client_cert": nil} {
		if r2[k] != want {
			t.Errorf("default %s = %v, want %v", k, r2[k], want)
		}
	}
	if l, ok := r2["headers"].([]any); !ok || len(l) != 0 {
		t.Errorf("default headers %v", r2["headers"])
	}
	if l, ok := r2["pulp_labels"].(map[string]any); !ok || len(l) != 0 {
		t.Errorf("default pulp_labels %v", r2["pulp_labels"])
	}
	for name, set := range hidden(t, r2) {
		if set {
			t.Errorf("hidden field %s set on a remote without secrets", name)
		}
	}

	// Bad input names the field and creates nothing.
	ok := func(extra map[string]any) map[string]any {
		b := map[string]any{"name": "x", "url": "http://example.com/"}
		for k, v := range extra {
			if v == "<absent>" {
				delete(b, k)
			} else {
				b[k] = v
			}
		}
		return b
	}
	if b := e.call("POST", remotes, ok(map[string]any{"name": "r1"}), 400); len(b) != 1 || len(b["name"].([]any)) != 1 || b["name"].([]any)[0] != "This field must be unique." {
		t.Fatalf("duplicate name: %v", b)
	}
	for _, tc := range []struct {
		body  any
		field string
	}{
		{ok(map[string]any{"name": "<absent>"}), "name"},
		{ok(map[string]any{"name": ""}), "name"},
		{ok(map[string]any{"name": nil}), "name"},
		{ok(map[string]any{"name": strings.Repeat("n", 256)}), "name"},
		{ok(map[string]any{"url": "<absent>"}), "url"},
		{ok(map[string]any{"url": "example.com/repo"}), "url"},
		{ok(map[string]any{"url": "ftp://example.com/repo"}), "url"},
		{ok(map[string]any{"url": "http:///path"}), "url"},
		{ok(map[string]any{"url": "file://relative/path"}), "url"},
		{ok(map[string]any{"url": 7}), "url"},
		{ok(map[string]any{"colour": "red"}), "colour"},
		{ok(map[string]any{"pulp_labels": []string{"x"}}), "pulp_labels"},
		{ok(map[string]any{"ca_cert": ""}), "ca_cert"},
		{ok(map[string]any{"client_cert": 5}), "client_cert"},
		{ok(map[string]any{"client_key": "  "}), "client_key"},
		{ok(map[string]any{"tls_validation": "yes"}), "tls_validation"},
		{ok(map[string]any{"tls_validation": nil}), "tls_validation"},
		{ok(map[string]any{"proxy_url": "proxy:3128"}), "proxy_url"},
		{ok(map[string]any{"proxy_url": "http://user:pw@proxy:3128"}), "proxy_url"},
		{ok(map[string]any{"proxy_username": "u", "proxy_password": "p"}), "proxy_url"},
		{ok(map[string]any{"proxy_url": "http://proxy:3128", "proxy_username": "u"}), "proxy_password"},
		{ok(map[string]any{"proxy_url": "http://proxy:3128", "proxy_password": "p"}), "proxy_username"},
		{ok(map[string]any{"username": 1}), "username"},
		{ok(map[string]any{"password": ""}), "password"},
		{ok(map[string]any{"policy": "eventually"}), "policy"},
		{ok(map[string]any{"policy": nil}), "policy"},
		{ok(map[string]any{"download_concurrency": 0}), "download_concurrency"},
		{ok(map[string]any{"download_concurrency": 1.5}), "download_concurrency"},
		{ok(map[string]any{"max_retries": -1}), "max_retries"},
		{ok(map[string]any{"rate_limit": -1}), "rate_limit"},
		{ok(map[string]any{"rate_limit": "fast"}), "rate_limit"},
		{ok(map[string]any{"total_timeout": -0.5}), "total_timeout"},
		{ok(map[string]any{"connect_timeout": "1"}), "connect_timeout"},
		{ok(map[string]any{"sock_connect_timeout": -1}), "sock_connect_timeout"},
		{ok(map[string]any{"sock_read_timeout": true}), "sock_read_timeout"},
		{ok(map[string]any{"headers": map[string]string{"A": "b"}}), "headers"},
		{ok(map[string]any{"headers": []any{map[string]any{"A": "b", "C": "d"}}}), "headers"},
		{ok(map[string]any{"headers": []any{map[string]any{}}}), "headers"},
		{ok(map[string]any{"headers": []any{map[string]any{"A": 1}}}), "headers"},
		{ok(map[string]any{"headers": []any{"A: b"}}), "headers"},
		{ok(map[string]any{"headers": []any{map[string]any{"A": "b\r\nX-Injected: 1"}}}), "headers"},
		{ok(map[string]any{"headers": nil}), "headers"},
		{ok(map[string]any{"manifest_name": 3}), "manifest_name"},
		{`{"name": "x",}`, "detail"},
		{`[1]`, "detail"},
	} {
		b := e.call("POST", remotes, tc.body, 400)
		if b[tc.field] == nil {
			t.Errorf("body %v: error %v does not name %s", tc.body, b, tc.field)
		}
	}
	if l := e.call("GET", "remotes/", nil, 200); count(t, l) != 2 {
		t.Fatalf("bad input created remotes: %v", l)
	}

	// Lists, filters, ordering and field selection.
	e.call("POST", "remotes/test/lazy/", map[string]any{"name": "lazy", "url": "http://lazy.example/"}, 201)
	id1 := h1[len(h1)-37 : len(h1)-1]
	later := url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339))
	for q, want := range map[string]float64{
		"": 2, "name=r1": 1, "name__in=r1,r2,lazy": 2, "name__contains=1": 1, "name__icontains=R": 2,
		"name__startswith=r2": 1, "name__iexact=R1": 1, "url=file:///srv/repo/": 1, "url=file:///srv": 0,
		"pulp_label_select=env=dev": 1, "pulp_label_select=!env": 1, "pulp_label_select=env~de": 1,
		"pulp_last_updated__lt=" + later: 2, "pulp_last_updated__gt=" + later: 0,
		"pulp_href__in=" + h1: 1, "pulp_id__in=" + id1: 1, "name=lazy": 0,
	} {
		if l := e.call("GET", remotes+"?"+q, nil, 200); count(t, l) != want {
			t.Errorf("%s: count %v, want %v", q, l["count"], want)
		}
	}
	for q, want := range map[string]float64{"": 3, "pulp_type=test.lazy": 1, "pulp_type__in=test.thing,test.lazy": 3} {
		if l := e.call("GET", "remotes/?"+q, nil, 200); count(t, l) != want {
			t.Errorf("remotes/?%s: count %v, want %v", q, l["count"], want)
		}
	}
	l := e.call("GET", remotes+"?ordering=-name&fields=name,pulp_href", nil, 200)
	first := l["results"].([]any)[0].(map[string]any)
	if len(first) != 2 || first["name"] != "r2" {
		t.Fatalf("ordering/fields: %v", l)
	}
	for _, q := range []string{"ordering=password", "ordering=username", "pulp_last_updated__gt=yesterday", "limit=0"} {
		e.call("GET", remotes+"?"+q, nil, 400)
	}
	if r := e.call("GET", h1+"?exclude_fields=url,hidden_fields", nil, 200); r["url"] != nil || r["hidden_fields"] != nil || r["name"] != "r1" {
		t.Fatalf("exclude_fields: %v", r)
	}
	if r := e.call("GET", h1+"?fields=hidden_fields", nil, 200); len(r) != 1 || len(hidden(t, r)) != 5 {
		t.Fatalf("fields=hidden_fields: %v", r)
	}
	// A remote is only found under its own type.
	e.call("GET", "remotes/test/lazy/"+id1+"/", nil, 404)
	e.call("GET", remotes+"not-a-uuid/", nil, 404)

	// PATCH changes only what it names; null clears a secret.
	before := e.call("GET", h1, nil, 200)
	task := e.task("PATCH", h1, map[string]any{"url": "https://mirror.example.com/", "password": nil, "max_retries": 2,
		"pulp_labels": map[string]string{"env": "prod"}}, "completed")
	e.checkTask(task, coretask.UpdateRemote, true, h1)
	r := e.call("GET", h1, nil, 200)
	if r["url"] != "https://mirror.example.com/" || r["max_retries"] != float64(2) || r["name"] != "r1" ||
		r["policy"] != "on_demand" || r["tls_validation"] != false || r["manifest_name"] != "MANIFEST" ||
		r["pulp_labels"].(map[string]any)["env"] != "prod" || r["pulp_last_updated"] == before["pulp_last_updated"] {
		t.Fatalf("patched %v", r)
	}
	if hf := hidden(t, r); hf["password"] || !hf["username"] || !hf["client_key"] || !hf["proxy_username"] || !hf["proxy_password"] {
		t.Fatalf("after clearing password: hidden_fields %v", hf)
	}
	// Validation happens in the request, against the stored state.
	e.call("PATCH", h1, map[string]any{"name": "r2"}, 400)
	e.call("PATCH", h1, map[string]any{"proxy_url": nil}, 400)
	e.call("PATCH", h1, map[string]any{"proxy_password": nil}, 400)
	e.call("PATCH", h1, map[string]any{"download_concurrency": 0}, 400)
	e.call("PATCH", h1, map[string]any{"policy": "sometimes"}, 400)
	e.call("PATCH", h1, map[string]any{"manifest_name": false}, 400)
	e.call("PATCH", remotes+"01900000-0000-7000-8000-000000000001/", map[string]any{"name": "ghost"}, 404)
	if r := e.call("GET", h1, nil, 200); r["name"] != "r1" || r["download_concurrency"] != float64(5) {
		t.Fatalf("rejected PATCH changed the remote: %v", r)
	}
	// Renaming to its own name is fine.
	e.task("PATCH", h1, map[string]any{"name": "r1"}, "completed")

	// PUT replaces the whole remote: what it omits, secrets included, takes
	// its default.
	e.call("PUT", h1, map[string]any{"name": "r1-put"}, 400)
	e.call("PUT", h1, map[string]any{"name": "r1-put", "url": "http://put.example/", "proxy_username": "u"}, 400)
	e.task("PUT", h1, map[string]any{"name": "r1-put", "url": "http://put.example/", "username": remoteSecretValues["username"]}, "completed")
	r = e.call("GET", h1, nil, 200)
	if r["name"] != "r1-put" || r["url"] != "http://put.example/" || r["policy"] != "immediate" || r["tls_validation"] != true ||
		r["download_concurrency"] != nil || r["ca_cert"] != nil || r["proxy_url"] != nil || len(r["headers"].([]any)) != 0 ||
		len(r["pulp_labels"].(map[string]any)) != 0 || r["manifest_name"] != nil {
		t.Fatalf("put %v", r)
	}
	if hf := hidden(t, r); !hf["username"] || hf["client_key"] || hf["password"] || hf["proxy_username"] || hf["proxy_password"] {
		t.Fatalf("after PUT: hidden_fields %v", hf)
	}

	// A repository uses the remote by href.
	repo := e.call("POST", "repositories/test/thing/", map[string]any{"name": "repo", "remote": h1}, 201)
	if repo["remote"] != h1 {
		t.Fatalf("repository remote %v, want %s", repo["remote"], h1)
	}
	if l := e.call("GET", "repositories/test/thing/?remote="+h1, nil, 200); count(t, l) != 1 {
		t.Fatalf("repositories with remote: %v", l)
	}
	lazy := e.call("GET", "remotes/test/lazy/", nil, 200)["results"].([]any)[0].(map[string]any)
	if b := e.call("POST", "repositories/test/thing/", map[string]any{"name": "repo2", "remote": lazy["pulp_href"]}, 400); b["remote"] == nil {
		t.Fatalf("remote of another type accepted: %v", b)
	}

	// DELETE is a (non-immediate) task; the repository loses its remote.
	task = e.task("DELETE", h1, nil, "completed")
	e.checkTask(task, coretask.DeleteRemote, false, h1)
	e.call("GET", h1, nil, 404)
	e.call("DELETE", h1, nil, 404)
	if r := e.call("GET", repo["pulp_href"].(string), nil, 200); r["remote"] != nil {
		t.Fatalf("repository still has remote %v", r["remote"])
	}
	e.task("DELETE", h2, nil, "completed")
	if l := e.call("GET", remotes, nil, 200); count(t, l) != 0 {
		t.Fatalf("remotes left: %v", l)
	}

	e.noSecrets(append(valuesOf(remoteSecretValues), "user:pw")...)
}

func valuesOf(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func TestRemotePolicyRestriction(t *testing.T) {
	t.Parallel()
	e := setupRemotes(t)
	lazy := "remotes/test/lazy/"
	r := e.call("POST", lazy, map[string]any{"name": "l", "url": "http://x.example/"}, 201)
	if r["policy"] != "on_demand" {
		t.Fatalf("default policy of a type without immediate: %v", r["policy"])
	}
	if b := e.call("POST", lazy, map[string]any{"name": "l2", "url": "http://x.example/", "policy": "immediate"}, 400); b["policy"] == nil {
		t.Fatalf("immediate accepted: %v", b)
	}
	e.call("PATCH", r["pulp_href"].(string), map[string]any{"policy": "immediate"}, 400)
	e.task("PATCH", r["pulp_href"].(string), map[string]any{"policy": "streamed"}, "completed")
	if got := e.call("GET", r["pulp_href"].(string), nil, 200); got["policy"] != "streamed" {
		t.Fatalf("policy %v", got["policy"])
	}
	// test.thing declares no restriction: every policy is allowed.
	for _, p := range []string{"immediate", "on_demand", "streamed"} {
		e.call("POST", "remotes/test/thing/", map[string]any{"name": "t-" + p, "url": "http://x.example/", "policy": p}, 201)
	}
	// The restriction is in the OpenAPI document too.
	var doc struct {
		Paths      map[string]map[string]struct{ OperationID string } `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Required   []string `json:"required"`
				Properties map[string]struct {
					Enum      []string `json:"enum"`
					WriteOnly bool     `json:"writeOnly"`
					ReadOnly  bool     `json:"readOnly"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	_, b := e.do("GET", "docs/api.json", nil, nil)
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, ops := range doc.Paths {
		for _, op := range ops {
			ids[op.OperationID] = true
		}
	}
	for _, typ := range []string{"thing", "lazy"} {
		for _, action := range []string{"list", "create", "read", "update", "partial_update", "delete"} {
			if !ids["remotes_test_"+typ+"_"+action] {
				t.Errorf("operation remotes_test_%s_%s missing", typ, action)
			}
		}
	}
	if !ids["remotes_list"] {
		t.Error("operation remotes_list missing")
	}
	schemas := doc.Components.Schemas
	if e := schemas["TestLazyRemote"].Properties["policy"].Enum; strings.Join(e, ",") != "on_demand,streamed" {
		t.Errorf("lazy policy enum %v", e)
	}
	if e := schemas["TestThingRemote"].Properties["policy"].Enum; len(e) != 3 {
		t.Errorf("thing policy enum %v", e)
	}
	for _, secret := range []string{"password", "username", "client_key", "proxy_username", "proxy_password"} {
		if _, ok := schemas["TestThingRemoteResponse"].Properties[secret]; ok {
			t.Errorf("response schema shows write-only %s", secret)
		}
		if _, ok := schemas["Remote"].Properties[secret]; ok {
			t.Errorf("generic Remote schema shows write-only %s", secret)
		}
		if p, ok := schemas["TestThingRemote"].Properties[secret]; !ok || !p.WriteOnly {
			t.Errorf("request schema: %s missing or not writeOnly", secret)
		}
	}
	if _, ok := schemas["TestThingRemoteResponse"].Properties["manifest_name"]; !ok {
		t.Error("response schema lacks the plugin field")
	}
	if !schemas["TestThingRemoteResponse"].Properties["hidden_fields"].ReadOnly {
		t.Error("hidden_fields not readOnly")
	}
	if _, ok := schemas["TestThingRemote"].Properties["hidden_fields"]; ok {
		t.Error("request schema has hidden_fields")
	}
	if req := strings.Join(schemas["TestThingRemote"].Required, ","); req != "name,url" {
		t.Errorf("request required %q", req)
	}
	if req := schemas["PatchedTestThingRemote"].Required; len(req) != 0 {
		t.Errorf("patched request required %v", req)
	}
}

func TestRemoteTypesAreChecked(t *testing.T) {
	t.Parallel()
	for name, types := range map[string][]api.RemoteType{
		"shadowed secret": {{Plugin: "a", Endpoint: "b", PulpType: "a.b", Fields: []api.Field{{Name: "password", Type: "string"}}}},
		"shadowed href":   {{Plugin: "a", Endpoint: "b", PulpType: "a.b", Fields: []api.Field{{Name: "pulp_href", Type: "string"}}}},
		"bad policy":      {{Plugin: "a", Endpoint: "b", PulpType: "a.b", Policies: []string{"later"}}},
		"no endpoint":     {{Plugin: "a", PulpType: "a.b"}},
		"twice":           {{Plugin: "a", Endpoint: "b", PulpType: "a.b"}, {Plugin: "a", Endpoint: "c", PulpType: "a.b"}},
	} {
		if _, err := api.New(api.Deps{Types: api.Types{Remotes: types}}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := api.New(api.Deps{Types: api.Types{Remotes: remoteTypes.Remotes}}); err != nil {
		t.Fatalf("valid types refused: %v", err)
	}
}
