package content

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
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/artifact"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/db/dbtest"
	"github.com/pulpo/pulpo/host/download"
	"github.com/pulpo/pulpo/host/storage/fs"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// env is a content app on a fresh database and storage, served over real
// HTTP, with an upstream for on-demand content.
type env struct {
	t       testing.TB
	ctx     context.Context
	db      *db.DB
	root    string // storage
	tmp     string // working directory of downloads
	arts    *artifact.Store
	h       *Handler
	srv     *httptest.Server
	up      *upstream
	counter int
}

type envOption func(*Deps)

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), db: db.New(dbtest.NewPool(t), nil), root: t.TempDir(), tmp: t.TempDir()}
	// First, so it closes last: closing the app cancels the downloads that
	// would keep its handlers busy.
	e.up = newUpstream(t)
	store, err := fs.New(e.root)
	if err != nil {
		t.Fatal(err)
	}
	e.arts = &artifact.Store{DB: e.db, Storage: store, TempDir: e.tmp, Checksums: []string{"sha256", "sha512"}}
	deps := Deps{DB: e.db, Storage: store, Artifacts: e.arts, Downloader: testDownloader,
		ServeFromPublication: map[string]bool{"file.file": true}, Prefix: "/pulp/content/",
		CacheTTL: time.Hour, Logger: testLogger(t)}
	for _, o := range opts {
		o(&deps)
	}
	e.h, err = New(deps)
	if err != nil {
		t.Fatal(err)
	}
	e.h.Start()
	t.Cleanup(e.h.Close)
	// Caching starts once the listener is in place; tests that show what is
	// cached need that, and no ping of its own arriving later to flush it.
	e.eventually("listener in place", e.h.resolver.listening.Load)
	mux := http.NewServeMux()
	mux.Handle("/pulp/content/", e.h)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// testDownloader maps the remote settings the tests use; the server's own
// mapping is tested with the binary.
func testDownloader(r db.Remote) (*download.Downloader, error) {
	secs := func(f *float64) time.Duration {
		if f == nil {
			return 0
		}
		return time.Duration(*f * float64(time.Second))
	}
	return download.New(download.Config{URL: r.URL, MaxRetries: r.MaxRetries, SockReadTimeout: secs(r.SockReadTimeout),
		TotalTimeout: secs(r.TotalTimeout)}, download.WithBackoff(10*time.Millisecond, 20*time.Millisecond),
		download.WithChecksums("sha256", "sha512"))
}

// tlog lets a logger write to a test until it ends.
type tlog struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (l *tlog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	l := &tlog{t: t}
	t.Cleanup(func() { l.mu.Lock(); l.done = true; l.mu.Unlock() })
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func (e *env) name(prefix string) string {
	e.counter++
	return fmt.Sprintf("%s-%d", prefix, e.counter)
}

// file is one unit of a test repository: stored bodies become artifacts,
// the others are fetched from their remotes (RemoteSize/RemoteSHA256 from
// the body unless overridden).
type file struct {
	path    string
	body    []byte
	stored  bool
	remotes []*db.Remote // on-demand sources, in order
	url     string       // upstream path; default "/" + path
	noSize  bool
}

// remote creates a remote pointing at the upstream with a policy.
func (e *env) remote(policy string, mod ...func(*db.Remote)) *db.Remote {
	e.t.Helper()
	zero := 0
	r := db.Remote{PulpType: "file.file", Name: e.name("remote"), URL: e.up.srv.URL + "/", Policy: policy, MaxRetries: &zero}
	for _, m := range mod {
		m(&r)
	}
	out, err := e.db.CreateRemote(e.ctx, r)
	if err != nil {
		e.t.Fatal(err)
	}
	return &out
}

// repo creates a repository whose version 1 holds files, and returns the
// repository, the version and the content artifact ids by path.
func (e *env) repo(files ...file) (db.Repository, db.RepositoryVersion, map[string]uuid.UUID) {
	e.t.Helper()
	repo, err := e.db.CreateRepository(e.ctx, db.Repository{PulpType: "file.file", Name: e.name("repo")})
	if err != nil {
		e.t.Fatal(err)
	}
	v := e.version(repo, files...)
	cas := map[string]uuid.UUID{}
	for _, f := range files {
		cas[f.path] = e.contentArtifact(f)
	}
	return repo, v, cas
}

// version adds a complete version holding exactly files.
func (e *env) version(repo db.Repository, files ...file) db.RepositoryVersion {
	e.t.Helper()
	var ids []uuid.UUID
	for _, f := range files {
		ids = append(ids, e.content(f))
	}
	v, err := e.db.NewVersion(e.ctx, repo.ID, nil, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.db.RemoveAllContent(e.ctx, repo.ID, v.Number); err != nil {
		e.t.Fatal(err)
	}
	if len(ids) > 0 {
		if err := e.db.AddContent(e.ctx, repo.ID, v.Number, ids); err != nil {
			e.t.Fatal(err)
		}
	}
	fv, err := e.db.FinalizeVersion(e.ctx, repo.ID, v.Number)
	if err != nil || fv == nil {
		e.t.Fatalf("finalize: %v %v", fv, err)
	}
	e.sync()
	return *fv
}

// content gets or creates the unit of f (keyed by path and body) with its
// content artifact and remote artifacts.
func (e *env) content(f file) uuid.UUID {
	e.t.Helper()
	fields, _ := json.Marshal(map[string]string{"relative_path": f.path, "sha256": sum(f.body)})
	cs, err := e.db.GetOrCreateContents(e.ctx, []db.NewContent{{PulpType: "file.file", NaturalKey: sum([]byte(f.path + "\x00" + sum(f.body))), Fields: fields}})
	if err != nil {
		e.t.Fatal(err)
	}
	ca := db.ContentArtifact{ContentID: cs[0].ID, RelativePath: f.path}
	if f.stored {
		a := e.artifact(f.body)
		ca.ArtifactID = &a.ID
	}
	if err := e.db.AddContentArtifacts(e.ctx, []db.ContentArtifact{ca}); err != nil {
		e.t.Fatal(err)
	}
	stored, err := e.db.ContentArtifactsOf(e.ctx, []uuid.UUID{cs[0].ID})
	if err != nil {
		e.t.Fatal(err)
	}
	url := f.url
	if url == "" {
		url = "/" + f.path
	}
	var ras []db.RemoteArtifact
	for _, r := range f.remotes {
		ra := db.RemoteArtifact{ContentArtifactID: stored[0].ID, RemoteID: r.ID, URL: r.URL + strings.TrimPrefix(url, "/"),
			Digests: map[string]string{"sha256": sum(f.body)}}
		if !f.noSize {
			n := int64(len(f.body))
			ra.Size = &n
		}
		ras = append(ras, ra)
	}
	if err := e.db.UpsertRemoteArtifacts(e.ctx, ras); err != nil {
		e.t.Fatal(err)
	}
	return cs[0].ID
}

func (e *env) contentArtifact(f file) uuid.UUID {
	e.t.Helper()
	id := e.content(f)
	cas, err := e.db.ContentArtifactsOf(e.ctx, []uuid.UUID{id})
	if err != nil || len(cas) != 1 {
		e.t.Fatalf("content artifacts of %s: %v %v", f.path, cas, err)
	}
	return cas[0].ID
}

func (e *env) artifact(body []byte) db.Artifact {
	e.t.Helper()
	a, _, err := e.arts.Ingest(e.ctx, bytes.NewReader(body), int64(len(body)), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// publication publishes version v: metadata bodies by path, and whether
// every unit passes through.
func (e *env) publication(v db.RepositoryVersion, passThrough bool, meta map[string][]byte, complete bool) db.Publication {
	e.t.Helper()
	p, err := e.db.CreatePublication(e.ctx, "file.file", v.ID, nil, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	var pas []db.PublishedArtifact
	for path, body := range meta {
		a := e.artifact(body)
		pas = append(pas, db.PublishedArtifact{RelativePath: path, ArtifactID: &a.ID})
	}
	if err := e.db.AddPublishedArtifacts(e.ctx, p.ID, pas); err != nil {
		e.t.Fatal(err)
	}
	if complete {
		if p, err = e.db.CompletePublication(e.ctx, p.ID, passThrough); err != nil {
			e.t.Fatal(err)
		}
	}
	e.sync()
	return p
}

func (e *env) distribution(d db.Distribution) db.Distribution {
	e.t.Helper()
	if d.PulpType == "" {
		d.PulpType = "file.file"
	}
	if d.Name == "" {
		d.Name = e.name("dist")
	}
	out, err := e.db.CreateDistribution(e.ctx, d)
	if err != nil {
		e.t.Fatal(err)
	}
	e.sync()
	return out
}

// sync waits until the content app has seen every change made so far.
func (e *env) sync() {
	e.t.Helper()
	if err := e.h.resolver.sync(e.ctx); err != nil {
		e.t.Fatal(err)
	}
}

// get requests path under the server with headers (alternating names and
// values) and returns the response with its body read.
func (e *env) get(path string, header ...string) (*http.Response, []byte) {
	e.t.Helper()
	return e.do(http.MethodGet, path, header...)
}

func (e *env) do(method, path string, header ...string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, body
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (e *env) want(path string, status int, body string, header ...string) *http.Response {
	e.t.Helper()
	resp, got := e.get(path, header...)
	if resp.StatusCode != status || body != "" && string(got) != body {
		e.t.Fatalf("GET %s = %d %q, want %d %q", path, resp.StatusCode, trim(got), status, body)
	}
	return resp
}

func trim(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

// tmpFiles lists what downloads left in the working directory.
func (e *env) tmpFiles() []string {
	ents, _ := os.ReadDir(e.tmp)
	var out []string
	for _, x := range ents {
		out = append(out, x.Name())
	}
	return out
}

// storedFiles lists the artifact files in storage.
func (e *env) storedFiles() []string {
	var out []string
	filepath.WalkDir(filepath.Join(e.root, "artifact"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func (e *env) artifactCount() int {
	var n int
	if err := e.db.Pool().QueryRow(e.ctx, "SELECT count(*) FROM artifacts").Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// eventually polls cond for up to 10 s.
func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// consistent checks that no download left a file behind and that storage
// holds exactly the recorded artifacts.
func (e *env) consistent() {
	e.t.Helper()
	e.eventually("download files removed", func() bool { return len(e.tmpFiles()) == 0 })
	rows, err := e.db.Pool().Query(e.ctx, "SELECT file FROM artifacts ORDER BY file")
	if err != nil {
		e.t.Fatal(err)
	}
	var want []string
	for rows.Next() {
		var f string
		rows.Scan(&f)
		want = append(want, filepath.Join(e.root, f))
	}
	sort.Strings(want)
	if got := e.storedFiles(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		e.t.Fatalf("storage holds %v, artifacts table %v", got, want)
	}
}

// upstream serves bodies with scripted behaviour and counts requests.
type upstream struct {
	srv *httptest.Server

	mu     sync.Mutex
	routes map[string]route
	hits   map[string]*atomic.Int64
	ranges map[string][]string // Range headers received by path
}

// route is how upstream answers one path.
type route struct {
	body []byte
	// serve replaces the default answer (http.ServeContent of body).
	serve func(w http.ResponseWriter, r *http.Request)
}

func newUpstream(t testing.TB) *upstream {
	u := &upstream{routes: map[string]route{}, hits: map[string]*atomic.Int64{}, ranges: map[string][]string{}}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		rt, ok := u.routes[r.URL.Path]
		if u.hits[r.URL.Path] == nil {
			u.hits[r.URL.Path] = &atomic.Int64{}
		}
		u.hits[r.URL.Path].Add(1)
		if rg := r.Header.Get("Range"); rg != "" {
			u.ranges[r.URL.Path] = append(u.ranges[r.URL.Path], rg)
		}
		u.mu.Unlock()
		switch {
		case !ok:
			http.NotFound(w, r)
		case rt.serve != nil:
			rt.serve(w, r)
		default:
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(rt.body))
		}
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) set(path string, rt route) {
	u.mu.Lock()
	u.routes[path] = rt
	u.mu.Unlock()
}

func (u *upstream) count(path string) int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	if c := u.hits[path]; c != nil {
		return c.Load()
	}
	return 0
}

func (u *upstream) rangesOf(path string) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.ranges[path]...)
}

// slowly serves body in chunks, waiting for gate (when set) after the first
// chunk and pausing between the others.
func slowly(body []byte, chunk int, pause time.Duration, gate <-chan struct{}) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(http.StatusOK)
		for off := 0; off < len(body); off += chunk {
			w.Write(body[off:min(off+chunk, len(body))])
			w.(http.Flusher).Flush()
			if off == 0 && gate != nil {
				select {
				case <-gate:
				case <-r.Context().Done():
					return
				}
			}
			time.Sleep(pause)
		}
	}
}

func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return b
}
