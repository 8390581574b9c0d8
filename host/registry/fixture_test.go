package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/host/artifact"
	"github.com/pulpo/pulpo/host/content"
	"github.com/pulpo/pulpo/host/coretask"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/db/dbtest"
	"github.com/pulpo/pulpo/host/download"
	"github.com/pulpo/pulpo/host/plugin"
	"github.com/pulpo/pulpo/host/plugin/plugintest"
	"github.com/pulpo/pulpo/host/storage/fs"
	"github.com/pulpo/pulpo/host/tasks"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// The container plugin, built and loaded once per test binary.
var (
	pluginOnce sync.Once
	pluginReg  *plugin.Registry
	pluginErr  error
)

func containerPlugin(t testing.TB) *plugin.Plugin {
	t.Helper()
	pluginOnce.Do(func() {
		dir, err := os.MkdirTemp("", "registry-plugin-")
		if err != nil {
			pluginErr = err
			return
		}
		ctx := context.Background()
		if pluginErr = plugintest.BuildGo(ctx, "./plugins/container", filepath.Join(dir, "container.wasm")); pluginErr != nil {
			return
		}
		pluginReg, pluginErr = plugin.Load(ctx, plugin.Options{Dirs: []string{dir}, ScratchDir: os.TempDir()})
	})
	if pluginErr != nil {
		t.Fatal(pluginErr)
	}
	p, ok := pluginReg.Plugin("container")
	if !ok {
		t.Fatal("container plugin not loaded")
	}
	return p
}

// env is a registry on a fresh database and storage, served over real HTTP, with a
// worker for the version tasks.
type env struct {
	t      testing.TB
	ctx    context.Context
	db     *db.DB
	arts   *artifact.Store
	h      *Handler
	srv    *httptest.Server
	client *http.Client
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func testDownloader(r db.Remote) (*download.Downloader, error) {
	return download.New(download.Config{URL: r.URL}, download.WithBackoff(10*time.Millisecond, 20*time.Millisecond),
		download.WithChecksums("sha256", "sha512"))
}

func newEnv(t testing.TB) *env {
	t.Helper()
	p := containerPlugin(t)
	ctx := context.Background()
	e := &env{t: t, ctx: ctx, db: db.New(dbtest.NewPool(t), nil)}
	store, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	e.arts = &artifact.Store{DB: e.db, Storage: store, TempDir: work, Checksums: []string{"sha256"}}
	log := testLogger(t)
	files, err := content.New(content.Deps{DB: e.db, Storage: store, Artifacts: e.arts, Downloader: testDownloader,
		Prefix: "/pulp/content/", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(files.Close)
	reg := tasks.NewRegistry()
	coretask.Register(reg, coretask.Deps{DB: e.db, Storage: store, Artifacts: e.arts, OrphanProtection: time.Hour})
	node := tasks.NewNode(e.db, reg, tasks.Options{Workers: 1, API: true, Poll: 100 * time.Millisecond, Logger: log})
	if err := node.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Stop(context.Background()) })
	d := p.Describe()
	var rt abi.Route
	for _, r := range d.Routes {
		if r.Protocol == abi.ProtocolOCIDistribution {
			rt = r
		}
	}
	e.h, err = New(Deps{DB: e.db, Storage: store, Artifacts: e.arts, Files: files, Plugin: p, Describe: d, Route: rt,
		Tasks: node, UploadDir: filepath.Join(work, "uploads"), CacheTTL: time.Hour, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	e.h.Start()
	t.Cleanup(e.h.Close)
	e.eventually("cache listener", e.h.cache.listening.Load)
	mux := http.NewServeMux()
	mux.Handle("/v2/", e.h)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	e.client = e.srv.Client()
	return e
}

func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

// code is the first OCI error code of the body.
func (r response) code() string {
	var b struct {
		Errors []ociError `json:"errors"`
	}
	_ = json.Unmarshal(r.body, &b)
	if len(b.Errors) == 0 {
		return ""
	}
	return b.Errors[0].Code
}

func (e *env) do(method, path string, body []byte, hdr ...string) response {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(e.ctx, method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (e *env) expect(r response, status int, code string) {
	e.t.Helper()
	if r.status != status || code != "" && r.code() != code {
		e.t.Fatalf("got %d %s, want %d %s", r.status, r.body, status, code)
	}
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// pushBlob uploads b monolithically to name.
func (e *env) pushBlob(name string, b []byte) string {
	e.t.Helper()
	d := digestOf(b)
	r := e.do("POST", "/v2/"+name+"/blobs/uploads/?digest="+d, b)
	e.expect(r, http.StatusCreated, "")
	return d
}

// image builds an OCI image manifest over a config and layers already pushed.
func image(config string, layers ...string) []byte {
	var ls []string
	for _, l := range layers {
		ls = append(ls, fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":3}`, l))
	}
	return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":2},"layers":[%s]}`,
		config, strings.Join(ls, ",")))
}

const mediaOCIManifest = "application/vnd.oci.image.manifest.v1+json"

// pushImage pushes a config, a layer and a manifest tagged tag; it returns the
// manifest's bytes and digest.
func (e *env) pushImage(name, tag, salt string) ([]byte, string) {
	e.t.Helper()
	cfg := e.pushBlob(name, []byte(`{"salt":"`+salt+`"}`))
	layer := e.pushBlob(name, []byte("layer "+salt))
	m := image(cfg, layer)
	r := e.do("PUT", "/v2/"+name+"/manifests/"+tag, m, "Content-Type", mediaOCIManifest)
	e.expect(r, http.StatusCreated, "")
	return m, digestOf(m)
}

// versions returns the numbers of a repository's complete versions, by name.
func (e *env) latest(name string) int {
	e.t.Helper()
	var n int
	err := e.db.Pool().QueryRow(e.ctx, `SELECT coalesce(max(v.number), -1) FROM repository_versions v
		JOIN repositories r ON r.id = v.repository_id WHERE r.name = $1 AND v.complete`, name).Scan(&n)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) count(sql string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.Pool().QueryRow(e.ctx, sql, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}
