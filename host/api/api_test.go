package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulpo/pulpo/host/api"
	"github.com/pulpo/pulpo/host/artifact"
	"github.com/pulpo/pulpo/host/coretask"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/db/dbtest"
	"github.com/pulpo/pulpo/host/digest"
	"github.com/pulpo/pulpo/host/storage/fs"
	"github.com/pulpo/pulpo/host/tasks"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// testTypes stand in for a plugin's describe.
var testTypes = api.Types{
	Repositories: []api.RepositoryType{{Plugin: "test", Endpoint: "thing", PulpType: "test.thing", ContentTypes: []string{"test.thing"},
		Fields: []api.Field{{Name: "autopublish", Type: "boolean", Default: false}}, RemoteTypes: []string{"test.thing"}}},
	Contents: []api.ContentType{{Plugin: "test", Endpoint: "things", PulpType: "test.thing", RepoKeyFields: []string{"relative_path"},
		Fields: []api.Field{{Name: "relative_path", Type: "string", Required: true}, {Name: "rev", Type: "string"}}}},
}

type env struct {
	t       *testing.T
	url     string
	db      *db.DB
	storage string
}

func setup(t *testing.T) *env {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
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
	srv, err := api.New(api.Deps{DB: d, Storage: st, Artifacts: arts, Tasks: node, Types: testTypes,
		Versions: map[string]string{"core": "0.1.0", "test": "1.0"}, MaxChunkSize: 1 << 20, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &env{t: t, url: hs.URL, db: d, storage: filepath.Join(root, "media")}
}

func (e *env) do(method, path string, body io.Reader, header http.Header) (*http.Response, []byte) {
	e.t.Helper()
	if !strings.HasPrefix(path, "http") {
		if !strings.HasPrefix(path, "/") {
			path = "/pulp/api/v3/" + path
		}
		path = e.url + path
	}
	req, err := http.NewRequestWithContext(e.t.Context(), method, path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// json sends v as JSON (a string is sent raw) and checks the status.
func (e *env) json(method, path string, v any, want int) map[string]any {
	e.t.Helper()
	var body io.Reader
	switch x := v.(type) {
	case nil:
	case string:
		body = strings.NewReader(x)
	default:
		b, _ := json.Marshal(x)
		body = bytes.NewReader(b)
	}
	resp, b := e.do(method, path, body, http.Header{"Content-Type": {"application/json"}})
	if resp.StatusCode != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	if ct := resp.Header.Get("Content-Type"); len(b) > 0 && ct != "application/json" {
		e.t.Fatalf("%s %s: Content-Type %q", method, path, ct)
	}
	out := map[string]any{}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			e.t.Fatalf("%s %s: body is not a JSON object: %s", method, path, b)
		}
	}
	return out
}

func (e *env) multipart(method, path string, fields map[string]string, file []byte, header http.Header) (*http.Response, []byte) {
	e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	if file != nil {
		fw, _ := mw.CreateFormFile("file", "blob")
		fw.Write(file)
	}
	mw.Close()
	h := http.Header{"Content-Type": {mw.FormDataContentType()}}
	for k, v := range header {
		h[k] = v
	}
	return e.do(method, path, &buf, h)
}

func (e *env) waitTask(taskHref string) map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		t := e.json("GET", taskHref, nil, 200)
		switch t["state"] {
		case "completed", "failed", "canceled":
			return t
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("task %s still %s", taskHref, t["state"])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runTask expects 202 {"task": href} and waits for the task to end in state.
func (e *env) runTask(method, path string, body any, state string) map[string]any {
	e.t.Helper()
	resp := e.json(method, path, body, 202)
	if len(resp) != 1 || resp["task"] == nil {
		e.t.Fatalf("202 body %v, want exactly {\"task\": href}", resp)
	}
	t := e.waitTask(resp["task"].(string))
	if t["state"] != state {
		e.t.Fatalf("task ended %s (want %s): %v", t["state"], state, t["error"])
	}
	return t
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func errBody(t *testing.T, b []byte, field string) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m[field] == nil {
		t.Fatalf("error body %s does not name %q", b, field)
	}
}

// artifactFiles counts stored artifact files.
func (e *env) artifactFiles() int {
	n := 0
	filepath.Walk(filepath.Join(e.storage, "artifact"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n++
		}
		return nil
	})
	return n
}

func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	e := setup(t)
	resp, b := e.do("GET", "docs/api.json", nil, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("docs: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var doc struct {
		OpenAPI string `json:"openapi"`
		Info    struct {
			Versions map[string]string `json:"x-pulp-app-versions"`
		} `json:"info"`
		Paths map[string]map[string]struct {
			OperationID string                  `json:"operationId"`
			Parameters  []struct{ Name string } `json:"parameters"`
			Responses   map[string]struct {
				Description string `json:"description"`
			} `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") || doc.Info.Versions["core"] == "" || doc.Info.Versions["test"] != "1.0" {
		t.Fatalf("openapi %q versions %v", doc.OpenAPI, doc.Info.Versions)
	}
	ids := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if op.OperationID == "" || ids[op.OperationID] {
				t.Errorf("%s %s: operationId %q missing or duplicate", method, path, op.OperationID)
			}
			ids[op.OperationID] = true
			for code, r := range op.Responses {
				if r.Description == "" {
					t.Errorf("%s: response %s has no description", op.OperationID, code)
				}
			}
			if strings.HasSuffix(op.OperationID, "_list") {
				names := map[string]bool{}
				for _, p := range op.Parameters {
					names[p.Name] = true
				}
				for _, want := range []string{"limit", "offset", "fields", "exclude_fields", "ordering"} {
					if !names[want] {
						t.Errorf("%s lacks query parameter %s", op.OperationID, want)
					}
				}
			}
		}
	}
	for _, want := range []string{"status_read", "artifacts_create", "artifacts_list", "uploads_commit", "tasks_cancel",
		"repositories_list", "repositories_test_thing_create", "repositories_test_thing_modify",
		"repositories_test_thing_versions_list", "content_list", "orphans_cleanup_cleanup", "workers_list", "task_groups_list"} {
		if !ids[want] {
			t.Errorf("operation %s missing", want)
		}
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	e := setup(t)
	s := e.json("GET", "status/", nil, 200)
	if s["database_connection"].(map[string]any)["connected"] != true {
		t.Fatalf("status: %v", s)
	}
	if len(s["online_workers"].([]any)) != 1 || len(s["online_api_apps"].([]any)) != 1 || len(s["versions"].([]any)) != 2 {
		t.Fatalf("status apps/versions: %v", s)
	}
}

func TestArtifacts(t *testing.T) {
	t.Parallel()
	e := setup(t)
	data := []byte("hello artifact")
	resp, b := e.multipart("POST", "artifacts/", map[string]string{"sha256": sha(data), "size": fmt.Sprint(len(data))}, data, nil)
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	var a map[string]any
	json.Unmarshal(b, &a)
	if a["sha256"] != sha(data) || a["size"] != float64(len(data)) || a["md5"] != nil || a["sha512"] == nil {
		t.Fatalf("artifact %v", a)
	}
	// The same bytes again: refused, nothing new stored.
	resp, b = e.multipart("POST", "artifacts/", nil, data, nil)
	if resp.StatusCode != 400 || !strings.Contains(string(b), "already exists") {
		t.Fatalf("duplicate: %d %s", resp.StatusCode, b)
	}
	for _, tc := range []struct {
		name   string
		fields map[string]string
		file   []byte
		field  string
	}{
		{"digest mismatch", map[string]string{"sha256": sha([]byte("other"))}, []byte("payload 1"), "sha256"},
		{"size mismatch", map[string]string{"size": "3"}, []byte("payload 2"), "size"},
		{"bad digest", map[string]string{"sha384": "xyz"}, []byte("payload 3"), "sha384"},
		{"md5 not allowed", map[string]string{"md5": "900150983cd24fb0d6963f7d28e17f72"}, []byte("payload 4"), "md5"},
		{"unknown field", map[string]string{"colour": "blue"}, []byte("payload 5"), "colour"},
		{"no file", map[string]string{"size": "3"}, nil, "file"},
	} {
		resp, b := e.multipart("POST", "artifacts/", tc.fields, tc.file, nil)
		if resp.StatusCode != 400 {
			t.Fatalf("%s: status %d %s", tc.name, resp.StatusCode, b)
		}
		errBody(t, b, tc.field)
	}
	if n := e.artifactFiles(); n != 1 {
		t.Fatalf("%d artifact files stored, want 1", n)
	}
	entries, _ := os.ReadDir(filepath.Join(filepath.Dir(e.storage), "tmp"))
	if len(entries) != 0 {
		t.Fatalf("temp files left behind: %v", entries)
	}
	list := e.json("GET", "artifacts/?sha256="+sha(data), nil, 200)
	if list["count"] != float64(1) {
		t.Fatalf("list by sha256: %v", list)
	}
	if l := e.json("GET", "artifacts/?sha256=nope", nil, 200); l["count"] != float64(0) {
		t.Fatalf("list by other sha256: %v", l)
	}
	one := e.json("GET", a["pulp_href"].(string)+"?fields=sha256,size", nil, 200)
	if len(one) != 2 {
		t.Fatalf("fields selection: %v", one)
	}
	e.json("GET", "artifacts/?limit=zero", nil, 400)
	e.json("GET", "/pulp/api/v3/artifacts/not-a-uuid/", nil, 404)
	// Used by content: refused; unused: deleted with its file.
	if _, err := e.db.GetOrCreateContents(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	e.json("DELETE", a["pulp_href"].(string), nil, 204)
	if n := e.artifactFiles(); n != 0 {
		t.Fatalf("artifact file not deleted")
	}
}

func TestArtifactInUseIsNotDeleted(t *testing.T) {
	t.Parallel()
	e := setup(t)
	data := []byte("used bytes")
	_, b := e.multipart("POST", "artifacts/", nil, data, nil)
	var a map[string]any
	json.Unmarshal(b, &a)
	art, err := e.db.ArtifactBySHA256(t.Context(), sha(data))
	if err != nil {
		t.Fatal(err)
	}
	c := e.content("a.txt")
	if err := e.db.AddContentArtifacts(t.Context(), []db.ContentArtifact{{ContentID: c.ID, ArtifactID: &art.ID, RelativePath: "a.txt"}}); err != nil {
		t.Fatal(err)
	}
	e.json("DELETE", a["pulp_href"].(string), nil, 409)
	e.json("GET", a["pulp_href"].(string), nil, 200)
}

func TestChunkedUpload(t *testing.T) {
	t.Parallel()
	e := setup(t)
	data := bytes.Repeat([]byte("0123456789"), 30) // 300 bytes
	up := e.json("POST", "uploads/", map[string]any{"size": len(data)}, 201)
	h := up["pulp_href"].(string)
	put := func(start, end int, total string, body []byte, extra map[string]string) (*http.Response, []byte) {
		return e.multipart("PUT", h, extra, body, http.Header{"Content-Range": {fmt.Sprintf("bytes %d-%d/%s", start, end, total)}})
	}
	// Out of order: the tail first.
	if resp, b := put(200, 299, "*", data[200:], nil); resp.StatusCode != 200 {
		t.Fatalf("chunk 3: %d %s", resp.StatusCode, b)
	}
	if resp, b := put(0, 99, "300", data[:100], map[string]string{"sha256": sha(data[:100])}); resp.StatusCode != 200 {
		t.Fatalf("chunk 1: %d %s", resp.StatusCode, b)
	}
	// A commit before the middle arrives names the missing bytes.
	resp, b := e.do("POST", h+"commit/", strings.NewReader(`{"sha256":"`+sha(data)+`"}`), http.Header{"Content-Type": {"application/json"}})
	if resp.StatusCode != 400 || !strings.Contains(string(b), "100-199") {
		t.Fatalf("incomplete commit: %d %s", resp.StatusCode, b)
	}
	for _, tc := range []struct {
		name  string
		resp  func() (*http.Response, []byte)
		field string
	}{
		{"past the end", func() (*http.Response, []byte) { return put(250, 349, "*", make([]byte, 100), nil) }, "Content-Range"},
		{"body longer than range", func() (*http.Response, []byte) { return put(100, 109, "*", make([]byte, 20), nil) }, "file"},
		{"body shorter than range", func() (*http.Response, []byte) { return put(100, 149, "*", make([]byte, 20), nil) }, "file"},
		{"bad header", func() (*http.Response, []byte) {
			return e.multipart("PUT", h, nil, []byte("x"), http.Header{"Content-Range": {"bytes=0-1"}})
		}, "Content-Range"},
		{"wrong total", func() (*http.Response, []byte) { return put(100, 199, "301", data[100:200], nil) }, "Content-Range"},
		{"overlap", func() (*http.Response, []byte) { return put(150, 249, "*", data[150:250], nil) }, "Content-Range"},
		{"chunk digest", func() (*http.Response, []byte) {
			return put(100, 199, "*", data[100:200], map[string]string{"sha256": sha([]byte("nope"))})
		}, "sha256"},
	} {
		resp, b := tc.resp()
		if resp.StatusCode != 400 {
			t.Fatalf("%s: %d %s", tc.name, resp.StatusCode, b)
		}
		errBody(t, b, tc.field)
	}
	if resp, b := put(100, 199, "*", data[100:200], nil); resp.StatusCode != 200 {
		t.Fatalf("chunk 2: %d %s", resp.StatusCode, b)
	}
	detail := e.json("GET", h, nil, 200)
	if chunks := detail["chunks"].([]any); len(chunks) != 3 {
		t.Fatalf("chunks %v", chunks)
	}
	bad := e.json("POST", h+"commit/", map[string]any{"sha256": sha([]byte("wrong"))}, 400)
	if bad["sha256"] == nil {
		t.Fatalf("wrong sha256 commit: %v", bad)
	}
	if e.artifactFiles() != 0 {
		t.Fatal("an artifact was stored for a bad commit")
	}
	task := e.runTask("POST", h+"commit/", map[string]any{"sha256": sha(data)}, "completed")
	created := task["created_resources"].([]any)
	if len(created) != 1 || !strings.HasPrefix(created[0].(string), "/pulp/api/v3/artifacts/") {
		t.Fatalf("created %v", created)
	}
	art := e.json("GET", created[0].(string), nil, 200)
	if art["sha256"] != sha(data) || art["size"] != float64(300) {
		t.Fatalf("artifact %v", art)
	}
	e.json("GET", h, nil, 404) // the upload is gone once committed
	if _, err := os.Stat(filepath.Join(e.storage, "upload")); err == nil {
		entries, _ := os.ReadDir(filepath.Join(e.storage, "upload", strings.Split(h, "/")[5]))
		if len(entries) != 0 {
			t.Fatalf("chunk files left: %v", entries)
		}
	}
	// Oversized chunk (the server allows 1 MiB).
	big := e.json("POST", "uploads/", map[string]any{"size": 3 << 20}, 201)
	resp, b = e.multipart("PUT", big["pulp_href"].(string), nil, make([]byte, 2<<20), http.Header{"Content-Range": {"bytes 0-2097151/*"}})
	if resp.StatusCode != 400 || !strings.Contains(string(b), "maximum chunk size") {
		t.Fatalf("oversized chunk: %d %s", resp.StatusCode, b)
	}
	e.json("DELETE", big["pulp_href"].(string), nil, 204)
	e.json("POST", "uploads/", map[string]any{"size": -1}, 400)
	e.json("POST", "uploads/", map[string]any{}, 400)
}

// content creates a test.thing unit directly in the database, as a sync would.
func (e *env) content(path string) db.Content {
	e.t.Helper()
	f, _ := json.Marshal(map[string]string{"relative_path": path})
	cs, err := e.db.GetOrCreateContents(e.t.Context(), []db.NewContent{{PulpType: "test.thing", NaturalKey: sha([]byte(path + string(f))), Fields: f}})
	if err != nil {
		e.t.Fatal(err)
	}
	return cs[0]
}

func contentHref(c db.Content) string {
	return "/pulp/api/v3/content/test/things/" + c.ID.String() + "/"
}

func TestRepositoryLifecycle(t *testing.T) {
	t.Parallel()
	e := setup(t)
	repos := "repositories/test/thing/"
	repo := e.json("POST", repos, map[string]any{"name": "r1", "description": "first", "pulp_labels": map[string]string{"env": "dev"}}, 201)
	rh := repo["pulp_href"].(string)
	if repo["latest_version_href"] != rh+"versions/0/" || repo["autopublish"] != false || repo["versions_href"] != rh+"versions/" {
		t.Fatalf("repo %v", repo)
	}
	// Bad input names the field and creates nothing.
	for _, tc := range []struct {
		body  any
		field string
	}{
		{map[string]any{"name": "r1"}, "name"},
		{map[string]any{"description": "no name"}, "name"},
		{map[string]any{"name": "x", "colour": "red"}, "colour"},
		{map[string]any{"name": 5}, "name"},
		{map[string]any{"name": "x", "autopublish": "yes"}, "autopublish"},
		{map[string]any{"name": "x", "retain_repo_versions": 0}, "retain_repo_versions"},
		{map[string]any{"name": "x", "remote": "/pulp/api/v3/remotes/test/thing/01900000-0000-7000-8000-000000000001/"}, "remote"},
		{map[string]any{"name": "x", "remote": "not an href"}, "remote"},
		{`{"name": "x",}`, "detail"},
		{`[1,2]`, "detail"},
	} {
		b := e.json("POST", repos, tc.body, 400)
		if b[tc.field] == nil {
			t.Errorf("body %v: error %v does not name %s", tc.body, b, tc.field)
		}
	}
	if l := e.json("GET", "repositories/", nil, 200); l["count"] != float64(1) {
		t.Fatalf("bad input created repositories: %v", l)
	}

	a, b, c := e.content("a.txt"), e.content("b.txt"), e.content("c.txt")
	task := e.runTask("POST", rh+"modify/", map[string]any{"add_content_units": []string{contentHref(a), contentHref(b)}}, "completed")
	if created := task["created_resources"].([]any); len(created) != 1 || created[0] != rh+"versions/1/" {
		t.Fatalf("created %v", created)
	}
	v1 := e.json("GET", rh+"versions/1/", nil, 200)
	summary := v1["content_summary"].(map[string]any)
	if summary["added"].(map[string]any)["test.thing"].(map[string]any)["count"] != float64(2) {
		t.Fatalf("summary %v", summary)
	}
	present := summary["present"].(map[string]any)["test.thing"].(map[string]any)
	if l := e.json("GET", present["href"].(string), nil, 200); l["count"] != float64(2) {
		t.Fatalf("present href %s lists %v", present["href"], l)
	}
	// Adding what is there already makes no new version.
	e.runTask("POST", rh+"modify/", map[string]any{"add_content_units": []string{contentHref(a)}}, "completed")
	if r := e.json("GET", rh, nil, 200); r["latest_version_href"] != rh+"versions/1/" {
		t.Fatalf("no-op modify made %v", r["latest_version_href"])
	}
	// A unit with the same relative_path replaces the old one (repo key).
	a2f, _ := json.Marshal(map[string]string{"relative_path": "a.txt", "rev": "2"})
	a2s, _ := e.db.GetOrCreateContents(t.Context(), []db.NewContent{{PulpType: "test.thing", NaturalKey: "a2", Fields: a2f}})
	e.runTask("POST", rh+"modify/", map[string]any{"add_content_units": []string{contentHref(a2s[0]), contentHref(c)}}, "completed")
	v2 := e.json("GET", "content/?repository_version="+rh+"versions/2/", nil, 200)
	if v2["count"] != float64(3) {
		t.Fatalf("version 2: %v", v2)
	}
	removed := e.json("GET", "content/?repository_version_removed="+rh+"versions/2/", nil, 200)
	if removed["count"] != float64(1) || removed["results"].([]any)[0].(map[string]any)["pulp_href"] != contentHref(a) {
		t.Fatalf("version 2 removed %v", removed)
	}
	// Remove everything, then rebuild from base version 1.
	e.runTask("POST", rh+"modify/", map[string]any{"remove_content_units": []string{"*"}}, "completed")
	if l := e.json("GET", "content/?repository_version="+rh+"versions/3/", nil, 200); l["count"] != float64(0) {
		t.Fatalf("version 3 %v", l)
	}
	e.runTask("POST", rh+"modify/", map[string]any{"base_version": rh + "versions/1/"}, "completed")
	v4 := e.json("GET", rh+"versions/4/", nil, 200)
	if v4["base_version"] != rh+"versions/1/" {
		t.Fatalf("v4 %v", v4)
	}
	if l := e.json("GET", "content/?repository_version="+rh+"versions/4/", nil, 200); l["count"] != float64(2) {
		t.Fatalf("version 4 %v", l)
	}
	// Bad modify input.
	for _, body := range []map[string]any{
		{"add_content_units": []string{"/pulp/api/v3/content/test/things/nope/"}},
		{"add_content_units": []string{"/pulp/api/v3/content/test/things/01900000-0000-7000-8000-000000000009/"}},
		{"base_version": rh + "versions/99/"},
		{"remove_content_units": "*"},
		{"add": []string{}},
	} {
		e.json("POST", rh+"modify/", body, 400)
	}
	// Versions list, filters and pagination.
	vl := e.json("GET", rh+"versions/?limit=2", nil, 200)
	if vl["count"] != float64(5) || vl["next"] == nil || vl["previous"] != nil || len(vl["results"].([]any)) != 2 {
		t.Fatalf("versions page %v", vl)
	}
	if vl["results"].([]any)[0].(map[string]any)["number"] != float64(4) {
		t.Fatalf("versions not newest first: %v", vl)
	}
	next := e.json("GET", vl["next"].(string), nil, 200)
	if next["previous"] == nil || next["results"].([]any)[0].(map[string]any)["number"] != float64(2) {
		t.Fatalf("next page %v", next)
	}
	if l := e.json("GET", rh+"versions/?content="+contentHref(c), nil, 200); l["count"] != float64(1) {
		t.Fatalf("versions with c: %v", l)
	}
	// Deleting version 2 keeps the content of 3 and 4 intact.
	e.runTask("DELETE", rh+"versions/2/", nil, "completed")
	e.json("GET", rh+"versions/2/", nil, 404)
	if l := e.json("GET", "content/?repository_version="+rh+"versions/4/", nil, 200); l["count"] != float64(2) {
		t.Fatalf("version 4 after deleting 2: %v", l)
	}
	// Update: PATCH and PUT are (immediate) tasks.
	e.runTask("PATCH", rh, map[string]any{"description": nil, "autopublish": true, "retain_repo_versions": 2}, "completed")
	r := e.json("GET", rh, nil, 200)
	if r["description"] != nil || r["autopublish"] != true || r["name"] != "r1" || r["retain_repo_versions"] != float64(2) {
		t.Fatalf("patched %v", r)
	}
	if l := e.json("GET", rh+"versions/", nil, 200); l["count"] != float64(2) {
		t.Fatalf("retain_repo_versions=2 kept %v versions", l["count"])
	}
	e.json("PATCH", rh, map[string]any{"name": ""}, 400)
	e.runTask("PUT", rh, map[string]any{"name": "r1-renamed"}, "completed")
	r = e.json("GET", rh, nil, 200)
	if r["name"] != "r1-renamed" || r["autopublish"] != false || len(r["pulp_labels"].(map[string]any)) != 0 {
		t.Fatalf("put %v", r)
	}
	// Lists, filters and field selection.
	e.json("POST", repos, map[string]any{"name": "other", "pulp_labels": map[string]string{"env": "prod"}}, 201)
	if b := e.json("PATCH", rh, map[string]any{"name": "other"}, 400); b["name"] == nil {
		t.Fatalf("rename onto a taken name: %v", b)
	}
	for q, want := range map[string]float64{
		"name=other": 1, "name__contains=renamed": 1, "name__in=other,r1-renamed": 2, "pulp_label_select=env=prod": 1,
		"pulp_label_select=!env": 1, "name__startswith=r1": 1, "name__icontains=OTHER": 1,
	} {
		if l := e.json("GET", repos+"?"+q, nil, 200); l["count"] != want {
			t.Errorf("%s: count %v, want %v", q, l["count"], want)
		}
	}
	l := e.json("GET", repos+"?ordering=name&fields=name", nil, 200)
	first := l["results"].([]any)[0].(map[string]any)
	if len(first) != 1 || first["name"] != "other" {
		t.Fatalf("ordering/fields %v", l)
	}
	e.json("GET", repos+"?ordering=colour", nil, 400)
	l = e.json("GET", repos+"?exclude_fields=pulp_href,name", nil, 200)
	if _, ok := l["results"].([]any)[0].(map[string]any)["pulp_href"]; ok {
		t.Fatalf("exclude_fields ignored: %v", l)
	}
	// Delete.
	e.runTask("DELETE", rh, nil, "completed")
	e.json("GET", rh, nil, 404)
}

func TestTasksAPI(t *testing.T) {
	t.Parallel()
	e := setup(t)
	rh := e.json("POST", "repositories/test/thing/", map[string]any{"name": "r"}, 201)["pulp_href"].(string)
	task := e.runTask("POST", rh+"modify/", map[string]any{"add_content_units": []string{contentHref(e.content("x"))}}, "completed")
	th := task["pulp_href"].(string)
	if task["reserved_resources_record"].([]any)[0] != rh || task["name"] != "core.modify" || task["logging_cid"] == "" {
		t.Fatalf("task %v", task)
	}
	for q, want := range map[string]float64{"state=completed": 1, "state=failed": 0, "name=core.modify": 1,
		"reserved_resources=" + rh: 1, "exclusive_resources=" + rh: 1, "created_resources=" + rh + "versions/1/": 1, "state__in=failed,completed": 1} {
		if l := e.json("GET", "tasks/?"+q, nil, 200); l["count"] != want {
			t.Errorf("tasks ?%s: %v", q, l["count"])
		}
	}
	e.json("GET", "tasks/?started_at__gt=yesterday", nil, 400)
	e.json("PATCH", th, map[string]any{"state": "canceled"}, 409)
	e.json("PATCH", th, map[string]any{"state": "running"}, 400)
	e.json("DELETE", th, nil, 204)
	e.json("GET", th, nil, 404)
	w := e.json("GET", "workers/?online=true", nil, 200)
	if w["count"] != float64(1) {
		t.Fatalf("workers %v", w)
	}
	e.json("GET", w["results"].([]any)[0].(map[string]any)["pulp_href"].(string), nil, 200)
}

func TestOrphanCleanup(t *testing.T) {
	t.Parallel()
	e := setup(t)
	data := []byte("orphan bytes")
	e.multipart("POST", "artifacts/", nil, data, nil)
	kept, orphan := e.content("kept"), e.content("orphan")
	rh := e.json("POST", "repositories/test/thing/", map[string]any{"name": "r"}, 201)["pulp_href"].(string)
	e.runTask("POST", rh+"modify/", map[string]any{"add_content_units": []string{contentHref(kept)}}, "completed")
	// The default protection time (a day) spares everything.
	e.runTask("POST", "orphans/cleanup/", map[string]any{}, "completed")
	if l := e.json("GET", "content/", nil, 200); l["count"] != float64(2) {
		t.Fatalf("protected orphans deleted: %v", l)
	}
	e.json("POST", "orphans/cleanup/", map[string]any{"orphan_protection_time": -1}, 400)
	task := e.runTask("POST", "orphans/cleanup/", map[string]any{"orphan_protection_time": 0}, "completed")
	if l := e.json("GET", "content/", nil, 200); l["count"] != float64(1) || l["results"].([]any)[0].(map[string]any)["pulp_href"] != contentHref(kept) {
		t.Fatalf("after cleanup: %v", l)
	}
	if l := e.json("GET", "artifacts/", nil, 200); l["count"] != float64(0) || e.artifactFiles() != 0 {
		t.Fatalf("orphan artifact left: %v", l)
	}
	if reports := task["progress_reports"].([]any); len(reports) != 2 {
		t.Fatalf("progress %v", reports)
	}
	_ = orphan
}

func TestTypedContentList(t *testing.T) {
	t.Parallel()
	e := setup(t)
	a, b := e.content("dir/a.txt"), e.content("dir/b.txt")
	l := e.json("GET", "content/test/things/", nil, 200)
	if l["count"] != float64(2) {
		t.Fatalf("typed list %v", l)
	}
	if l := e.json("GET", "content/test/things/?relative_path=dir/a.txt", nil, 200); l["count"] != float64(1) {
		t.Fatalf("field filter %v", l)
	}
	if l := e.json("GET", "content/test/things/?relative_path__in=dir/a.txt,dir/b.txt,x", nil, 200); l["count"] != float64(2) {
		t.Fatalf("field __in filter %v", l)
	}
	one := e.json("GET", contentHref(b), nil, 200)
	if one["relative_path"] != "dir/b.txt" || one["pulp_type"] != "test.thing" {
		t.Fatalf("read %v", one)
	}
	e.json("GET", "/pulp/api/v3/content/test/things/"+a.ID.String()[:8]+"/", nil, 404)
}

func TestSyncValidation(t *testing.T) {
	t.Parallel()
	e := setup(t)
	rh := e.json("POST", "repositories/test/thing/", map[string]any{"name": "r"}, 201)["pulp_href"].(string)
	other, err := e.db.CreateRemote(t.Context(), db.Remote{PulpType: "other.remote", Name: "o", URL: "http://x/", Policy: "immediate"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"colour": 1}, "colour"},
		{map[string]any{}, "remote"},
		{map[string]any{"remote": "/pulp/api/v3/remotes/test/thing/01900000-0000-7000-8000-000000000001/"}, "remote"},
		{map[string]any{"remote": "/pulp/api/v3/remotes/other/remote/" + other.ID.String() + "/"}, "remote"},
		{map[string]any{"remote": "/pulp/api/v3/remotes/other/remote/" + other.ID.String() + "/", "mirror": "yes"}, "mirror"},
	} {
		b := e.json("POST", rh+"sync/", tc.body, 400)
		if b[tc.field] == nil {
			t.Errorf("sync %v: %v does not name %s", tc.body, b, tc.field)
		}
	}
}
