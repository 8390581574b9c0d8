package stages_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/host/artifact"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/db/dbtest"
	"github.com/pulpo/pulpo/host/digest"
	"github.com/pulpo/pulpo/host/plugin"
	"github.com/pulpo/pulpo/host/stages"
	"github.com/pulpo/pulpo/host/storage"
	"github.com/pulpo/pulpo/host/storage/fs"
	"github.com/pulpo/pulpo/host/tasks"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// upstream serves files from memory and counts downloads.
type upstream struct {
	mu        sync.Mutex
	files     map[string][]byte
	slow      map[string]time.Duration
	downloads atomic.Int64
	headers   map[string]map[string]string // request headers of each download, by url
}

func (u *upstream) Concurrency() int { return 4 }

func (u *upstream) get(url string) ([]byte, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	b, ok := u.files[url]
	if !ok {
		return nil, fmt.Errorf("GET %s: 404", url)
	}
	return b, nil
}

func (u *upstream) Download(ctx context.Context, url string, header map[string]string, size int64, digests map[string]string, dir string) (string, int64, map[string]string, error) {
	b, err := u.get(url)
	if err != nil {
		return "", 0, nil, err
	}
	u.mu.Lock()
	if u.headers == nil {
		u.headers = map[string]map[string]string{}
	}
	u.headers[url] = header
	delay := u.slow[url]
	u.mu.Unlock()
	time.Sleep(delay)
	u.downloads.Add(1)
	f, err := os.CreateTemp(dir, "dl-*")
	if err != nil {
		return "", 0, nil, err
	}
	defer f.Close()
	h, _ := digest.New(digest.DefaultAllowed...)
	io.Copy(io.MultiWriter(f, h), bytes.NewReader(b))
	got := h.Sums()
	if size >= 0 && int64(len(b)) != size || digests["sha256"] != "" && digests["sha256"] != got["sha256"] {
		os.Remove(f.Name())
		return "", 0, nil, fmt.Errorf("%s: digest or size mismatch", url)
	}
	return f.Name(), int64(len(b)), got, nil
}

func (u *upstream) Stream(ctx context.Context, _, url string, _ map[string]string, w io.Writer) (int, http.Header, error) {
	b, err := u.get(url)
	if err != nil {
		return 404, nil, err
	}
	_, err = w.Write(b)
	return 200, http.Header{}, err
}

// firstStage emits what its func returns; it stands in for a plugin.
type firstStage func(req abi.SyncRequest) ([]abi.DeclarativeContent, error)

func (f firstStage) SyncFirstStage(ctx context.Context, req abi.SyncRequest, h plugin.SyncHost) (*plugin.SyncResult, error) {
	units, err := f(req)
	if err != nil {
		return nil, err
	}
	for i := 0; i < len(units); i += 7 { // odd batches
		if err := h.Emit(ctx, units[i:min(i+7, len(units))]); err != nil {
			return nil, err
		}
	}
	return &plugin.SyncResult{Dir: os.TempDir() + "/nonexistent-" + uuid.NewString()}, nil
}

type env struct {
	t     *testing.T
	db    *db.DB
	store *fs.FS
	node  *tasks.Node
	up    *upstream
	plug  firstStage
	// resp, when set, makes the first stage's response (details, skipped).
	resp func(abi.SyncRequest) abi.SyncResponse
}

// envStage is the env's first stage: e.plug's units, then e.resp's response.
type envStage struct{ e *env }

func (s envStage) SyncFirstStage(ctx context.Context, req abi.SyncRequest, h plugin.SyncHost) (*plugin.SyncResult, error) {
	res, err := firstStage(func(r abi.SyncRequest) ([]abi.DeclarativeContent, error) { return s.e.plug(r) }).SyncFirstStage(ctx, req, h)
	if err == nil && s.e.resp != nil {
		res.SyncResponse = s.e.resp(req)
	}
	return res, err
}

func setup(t *testing.T) *env { return setupStore(t, nil) }

// setupStore is setup with the fs driver wrapped by wrap, when not nil.
func setupStore(t *testing.T, wrap func(*env, *fs.FS) storage.Driver) *env {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	d := db.New(dbtest.NewPool(t), log)
	root := t.TempDir()
	fsd, _ := fs.New(filepath.Join(root, "media"))
	work := filepath.Join(root, "tmp")
	os.MkdirAll(work, 0o755)
	e := &env{t: t, db: d, store: fsd, up: &upstream{files: map[string][]byte{}}}
	var st storage.Driver = fsd
	if wrap != nil {
		st = wrap(e, fsd)
	}
	syncer := &stages.Syncer{DB: d, Artifacts: &artifact.Store{DB: d, Storage: st, TempDir: work, Checksums: digest.DefaultAllowed},
		TempDir: work, Log: log,
		Plugin:     func(string) (stages.FirstStager, bool) { return envStage{e}, true },
		Downloader: func(db.Remote) (stages.Downloader, error) { return e.up, nil },
		Types:      map[string]stages.TypeInfo{"t.file": {NaturalKey: []string{"path", "sha256"}}, "t.tag": {NaturalKey: []string{"name"}}},
	}
	reg := tasks.NewRegistry()
	syncer.Register(reg)
	e.node = tasks.NewNode(d, reg, tasks.Options{Name: "t", Workers: 2, Poll: 100 * time.Millisecond, Logger: log})
	if err := e.node.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.node.Stop(context.Background()) })
	return e
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// files makes n upstream files and the units describing them.
func (e *env) files(prefix string, n int, deferred bool) []abi.DeclarativeContent {
	var out []abi.DeclarativeContent
	for i := range n {
		body := []byte(fmt.Sprintf("%s body %d", prefix, i))
		path := fmt.Sprintf("%s/%d.txt", prefix, i)
		url := "http://up/" + path
		e.up.mu.Lock()
		e.up.files[url] = body
		e.up.mu.Unlock()
		fields, _ := json.Marshal(map[string]string{"path": path, "sha256": sha(body)})
		out = append(out, abi.DeclarativeContent{Type: "t.file", Fields: fields, Artifacts: []abi.DeclarativeArtifact{
			{RelativePath: path, URL: url, SHA256: sha(body), Size: int64(len(body)), Deferred: deferred}}})
	}
	return out
}

func (e *env) repo(name string) (db.Repository, db.Remote) {
	e.t.Helper()
	r, err := e.db.CreateRepository(e.t.Context(), db.Repository{PulpType: "t.repo", Name: name})
	if err != nil {
		e.t.Fatal(err)
	}
	rm, err := e.db.CreateRemote(e.t.Context(), db.Remote{PulpType: "t.remote", Name: name, URL: "http://up/", Policy: "immediate"})
	if err != nil {
		e.t.Fatal(err)
	}
	return r, rm
}

func (e *env) sync(r db.Repository, rm db.Remote, mirror bool) db.Task {
	e.t.Helper()
	task, err := e.node.Dispatch(e.t.Context(), tasks.Spec{Name: stages.TaskSync, Exclusive: []string{r.ID.String()}, Shared: []string{rm.ID.String()},
		Args: stages.SyncArgs{Repository: r.ID, RepoHref: "/r/" + r.ID.String() + "/", Remote: rm.ID, Mirror: mirror, Plugin: "t",
			ContentTypes: []string{"t.file", "t.tag"}, RepoKeys: map[string][]string{"t.file": {"path"}}}})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(e.t.Context(), 60*time.Second)
	defer cancel()
	done, err := e.node.WaitTask(ctx, task.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return done
}

func (e *env) latest(r db.Repository) db.RepositoryVersion {
	v, err := e.db.LatestVersion(e.t.Context(), r.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

func (e *env) present(r db.Repository) int64 { return e.latest(r).ContentSummary.Present["t.file"] }

func TestImmediateSyncMirrorAndAdditive(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r, rm := e.repo("r")
	first := e.files("a", 40, false)
	e.plug = func(abi.SyncRequest) ([]abi.DeclarativeContent, error) { return first, nil }
	if task := e.sync(r, rm, false); task.State != db.TaskCompleted {
		t.Fatalf("sync: %s %s", task.State, task.Error)
	}
	if v := e.latest(r); v.Number != 1 || e.present(r) != 40 || e.up.downloads.Load() != 40 {
		t.Fatalf("version %d present %d downloads %d", v.Number, e.present(r), e.up.downloads.Load())
	}
	arts, _ := e.db.ListArtifacts(t.Context(), db.ListParams{Limit: 1})
	if arts.Count != 40 {
		t.Fatalf("%d artifacts stored", arts.Count)
	}
	reports, _ := e.db.ProgressReports(t.Context(), e.lastTask(t))
	codes := map[string]int64{}
	for _, p := range reports {
		codes[p.Code] = p.Done
	}
	if codes["sync.downloading.artifacts"] != 40 || codes["associating.content"] != 40 {
		t.Fatalf("progress %v", codes)
	}
	// Re-sync with nothing changed: no new version, no download.
	e.sync(r, rm, false)
	if v := e.latest(r); v.Number != 1 || e.up.downloads.Load() != 40 {
		t.Fatalf("re-sync made version %d, downloads %d", v.Number, e.up.downloads.Load())
	}
	// Upstream changed: 10 new units, additive keeps the old 40.
	second := e.files("b", 10, false)
	e.plug = func(abi.SyncRequest) ([]abi.DeclarativeContent, error) { return second, nil }
	e.sync(r, rm, false)
	if v := e.latest(r); v.Number != 2 || e.present(r) != 50 || v.ContentSummary.Added["t.file"] != 10 {
		t.Fatalf("additive: version %d present %d summary %+v", v.Number, e.present(r), v.ContentSummary)
	}
	// Mirror: only what the upstream lists now.
	e.sync(r, rm, true)
	if v := e.latest(r); v.Number != 3 || e.present(r) != 10 || v.ContentSummary.Removed["t.file"] != 40 {
		t.Fatalf("mirror: version %d present %d summary %+v", v.Number, e.present(r), v.ContentSummary)
	}
	if e.up.downloads.Load() != 50 {
		t.Fatalf("downloads %d, want 50 (already stored artifacts are not fetched again)", e.up.downloads.Load())
	}
}

func (e *env) lastTask(t *testing.T) uuid.UUID {
	p, err := e.db.ListTasks(t.Context(), db.ListParams{Limit: 1})
	if err != nil || len(p.Items) == 0 {
		t.Fatal(err)
	}
	return p.Items[0].ID
}

func TestOnDemandRecordsRemoteArtifacts(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r, rm := e.repo("r")
	units := e.files("lazy", 12, true)
	e.plug = func(abi.SyncRequest) ([]abi.DeclarativeContent, error) { return units, nil }
	if task := e.sync(r, rm, false); task.State != db.TaskCompleted {
		t.Fatalf("sync: %s %s", task.State, task.Error)
	}
	if e.up.downloads.Load() != 0 || e.present(r) != 12 {
		t.Fatalf("on_demand downloaded %d, present %d", e.up.downloads.Load(), e.present(r))
	}
	page, _ := e.db.ListContents(t.Context(), db.ListParams{Limit: 100})
	var ids []uuid.UUID
	for _, c := range page.Items {
		ids = append(ids, c.ID)
	}
	cas, _ := e.db.ContentArtifactsOf(t.Context(), ids)
	var caIDs []uuid.UUID
	for _, ca := range cas {
		if ca.ArtifactID != nil {
			t.Fatalf("deferred artifact was linked: %+v", ca)
		}
		caIDs = append(caIDs, ca.ID)
	}
	ras, _ := e.db.RemoteArtifactsOf(t.Context(), caIDs)
	if len(cas) != 12 || len(ras) != 12 || !strings.HasPrefix(ras[0].URL, "http://up/lazy/") || ras[0].Digests["sha256"] == "" {
		t.Fatalf("content artifacts %d, remote artifacts %v", len(cas), ras)
	}
}

func TestFailedSyncLeavesNoVersion(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r, rm := e.repo("r")
	units := e.files("x", 30, false)
	units[20].Artifacts[0].SHA256 = sha([]byte("not the bytes")) // the upstream serves other bytes
	e.plug = func(abi.SyncRequest) ([]abi.DeclarativeContent, error) { return units, nil }
	task := e.sync(r, rm, false)
	if task.State != db.TaskFailed || !strings.Contains(string(task.Error), "http://up/x/20.txt") {
		t.Fatalf("sync ended %s: %s", task.State, task.Error)
	}
	if v := e.latest(r); v.Number != 0 {
		t.Fatalf("a failed sync left version %d", v.Number)
	}
	var incomplete int
	e.db.Pool().QueryRow(t.Context(), "SELECT count(*) FROM repository_versions WHERE NOT complete").Scan(&incomplete)
	if incomplete != 0 {
		t.Fatalf("%d incomplete versions", incomplete)
	}
	// The first stage failing is reported too.
	e.plug = func(abi.SyncRequest) ([]abi.DeclarativeContent, error) {
		return nil, fmt.Errorf("manifest line 3: bad digest")
	}
	if task := e.sync(r, rm, false); task.State != db.TaskFailed || !strings.Contains(string(task.Error), "manifest line 3") {
		t.Fatalf("first stage error: %s %s", task.State, task.Error)
	}
}

func TestRelationsAndUnknownTypes(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r, rm := e.repo("r")
	files := e.files("f", 2, true)
	var target map[string]string
	json.Unmarshal(files[1].Fields, &target)
	key, _ := json.Marshal(target)
	tag := abi.DeclarativeContent{Type: "t.tag", Fields: json.RawMessage(`{"name":"latest"}`),
		Relations: []abi.Relation{{Name: "file", To: abi.ContentRef{Type: "t.file", Key: key}}}}
	e.plug = func(abi.SyncRequest) ([]abi.DeclarativeContent, error) { return append(files, tag), nil }
	if task := e.sync(r, rm, false); task.State != db.TaskCompleted {
		t.Fatalf("sync: %s %s", task.State, task.Error)
	}
	tags, _ := e.db.ContentByKeys(t.Context(), "t.tag", nil, nil)
	_ = tags
	all, _ := e.db.ListContents(t.Context(), db.ListParams{Filters: []db.Filter{{Field: "pulp_type", Value: "t.tag"}}, Limit: 10})
	rels, _ := e.db.RelationsFrom(t.Context(), []uuid.UUID{all.Items[0].ID})
	if len(rels) != 1 || rels[0].Name != "file" {
		t.Fatalf("relations %v", rels)
	}
	// A relation to a unit never emitted fails the sync.
	bad := abi.DeclarativeContent{Type: "t.tag", Fields: json.RawMessage(`{"name":"broken"}`),
		Relations: []abi.Relation{{Name: "file", To: abi.ContentRef{Type: "t.file", Key: json.RawMessage(`{"path":"nope","sha256":"00"}`)}}}}
	e.plug = func(abi.SyncRequest) ([]abi.DeclarativeContent, error) { return []abi.DeclarativeContent{bad}, nil }
	if task := e.sync(r, rm, false); task.State != db.TaskFailed || !strings.Contains(string(task.Error), "not emitted") ||
		!strings.Contains(string(task.Error), "relation file of t.tag unit") || !strings.Contains(string(task.Error), "broken") {
		t.Fatalf("dangling relation: %s %s", task.State, task.Error)
	}
	e.plug = func(abi.SyncRequest) ([]abi.DeclarativeContent, error) {
		return []abi.DeclarativeContent{{Type: "other.thing", Fields: json.RawMessage(`{}`)}}, nil
	}
	if task := e.sync(r, rm, false); task.State != db.TaskFailed || !strings.Contains(string(task.Error), "other.thing") {
		t.Fatalf("unknown type: %s %s", task.State, task.Error)
	}
}

// TestLastSyncDetails hands a sync the details the previous successful sync
// of the same repository and remote returned, skipped syncs included, and
// not those of a failed sync or of another remote.
func TestLastSyncDetails(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r, rm := e.repo("r")
	files := e.files("d", 3, true)
	var seen []string
	n := 0
	fail := false
	e.plug = func(req abi.SyncRequest) ([]abi.DeclarativeContent, error) {
		seen = append(seen, string(req.Repository.LastSyncDetails))
		if fail {
			return nil, errors.New("upstream broke")
		}
		return files, nil
	}
	e.resp = func(req abi.SyncRequest) abi.SyncResponse {
		n++
		return abi.SyncResponse{Details: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)), Skipped: n == 2}
	}
	for range 2 {
		if task := e.sync(r, rm, false); task.State != db.TaskCompleted {
			t.Fatalf("sync: %s %s", task.State, task.Error)
		}
	}
	if v := e.latest(r).Number; v != 1 {
		t.Fatalf("latest version %d after a sync and a skipped one, want 1", v)
	}
	fail = true
	if task := e.sync(r, rm, false); task.State != db.TaskFailed {
		t.Fatalf("failing sync: %s", task.State)
	}
	fail = false
	if task := e.sync(r, rm, false); task.State != db.TaskCompleted {
		t.Fatalf("sync: %s %s", task.State, task.Error)
	}
	other, err := e.db.CreateRemote(t.Context(), db.Remote{PulpType: "t.remote", Name: "other", URL: "http://up/", Policy: "immediate"})
	if err != nil {
		t.Fatal(err)
	}
	if task := e.sync(r, other, false); task.State != db.TaskCompleted {
		t.Fatalf("sync: %s %s", task.State, task.Error)
	}
	// A new version from elsewhere (here another remote adding a unit) hides
	// rm's details: the repository is no longer what that sync left.
	files = append(files, e.files("extra", 1, true)...)
	if task := e.sync(r, other, false); task.State != db.TaskCompleted {
		t.Fatalf("sync: %s %s", task.State, task.Error)
	}
	if task := e.sync(r, rm, false); task.State != db.TaskCompleted {
		t.Fatalf("sync: %s %s", task.State, task.Error)
	}
	want := []string{"", `{"n": 1}`, `{"n": 2}`, `{"n": 2}`, "", `{"n": 4}`, ""}
	if !slices.Equal(seen, want) {
		t.Fatalf("last_sync_details seen %q, want %q", seen, want)
	}
}

// TestArtifactHeaders sends an artifact's headers with its download and
// keeps them with its remote artifact for on-demand fetches.
func TestArtifactHeaders(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r, rm := e.repo("r")
	now, later := e.files("now", 1, false), e.files("later", 1, true)
	accept := map[string]string{"accept": "application/vnd.oci.image.manifest.v1+json"}
	now[0].Artifacts[0].Headers, later[0].Artifacts[0].Headers = accept, accept
	e.plug = func(abi.SyncRequest) ([]abi.DeclarativeContent, error) { return append(now, later...), nil }
	if task := e.sync(r, rm, false); task.State != db.TaskCompleted {
		t.Fatalf("sync: %s %s", task.State, task.Error)
	}
	url := now[0].Artifacts[0].URL
	e.up.mu.Lock()
	got := e.up.headers[url]
	e.up.mu.Unlock()
	if got["accept"] != accept["accept"] {
		t.Errorf("download of %s sent headers %v, want %v", url, got, accept)
	}
	for _, u := range append(now, later...) {
		cs, err := e.db.ContentByKeys(t.Context(), "t.file", []string{mustKey(t, u.Fields)}, nil)
		if err != nil || len(cs) != 1 {
			t.Fatalf("content %v %v", cs, err)
		}
		cas, err := e.db.ContentArtifactsOf(t.Context(), []uuid.UUID{cs[0].ID})
		if err != nil || len(cas) != 1 {
			t.Fatalf("content artifacts %v %v", cas, err)
		}
		srcs, err := e.db.RemoteSources(t.Context(), cas[0].ID, time.Minute)
		if err != nil || len(srcs) != 1 {
			t.Fatalf("remote sources %v %v", srcs, err)
		}
		if srcs[0].Headers["accept"] != accept["accept"] {
			t.Errorf("remote artifact of %s has headers %v, want %v", u.Artifacts[0].URL, srcs[0].Headers, accept)
		}
	}
}

// TestRelationTargetEmittedLater emits a unit before its relation's target,
// which comes more than a save batch later: the spec allows any order.
func TestRelationTargetEmittedLater(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r, rm := e.repo("r")
	files := e.files("late", 1200, true)
	var target map[string]string
	json.Unmarshal(files[len(files)-1].Fields, &target)
	key, _ := json.Marshal(target)
	tag := abi.DeclarativeContent{Type: "t.tag", Fields: json.RawMessage(`{"name":"early"}`),
		Relations: []abi.Relation{{Name: "file", To: abi.ContentRef{Type: "t.file", Key: key}}}}
	e.plug = func(abi.SyncRequest) ([]abi.DeclarativeContent, error) {
		return append([]abi.DeclarativeContent{tag}, files...), nil
	}
	if task := e.sync(r, rm, false); task.State != db.TaskCompleted {
		t.Fatalf("sync: %s %s", task.State, task.Error)
	}
	tags, err := e.db.ListContents(t.Context(), db.ListParams{Filters: []db.Filter{{Field: "pulp_type", Value: "t.tag"}}, Limit: 10})
	if err != nil || len(tags.Items) != 1 {
		t.Fatalf("tags %v %v", tags.Items, err)
	}
	want, err := e.db.ContentByKeys(t.Context(), "t.file", []string{mustKey(t, key)}, nil)
	if err != nil || len(want) != 1 {
		t.Fatalf("target %v %v", want, err)
	}
	rels, _ := e.db.RelationsFrom(t.Context(), []uuid.UUID{tags.Items[0].ID})
	if len(rels) != 1 || rels[0].Name != "file" || rels[0].To != want[0].ID {
		t.Fatalf("relations %v, want one to %s", rels, want[0].ID)
	}
}

func mustKey(t *testing.T, fields json.RawMessage) string {
	t.Helper()
	k, err := db.NaturalKey(fields, []string{"path", "sha256"})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestConcurrentSyncsShareContent syncs two repositories with the same
// upstream at once: no deadlock, no duplicate content or artifacts.
func TestConcurrentSyncsShareContent(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r1, rm1 := e.repo("r1")
	r2, rm2 := e.repo("r2")
	units := e.files("shared", 200, false)
	e.plug = func(abi.SyncRequest) ([]abi.DeclarativeContent, error) { return units, nil }
	var wg sync.WaitGroup
	for _, p := range []struct {
		r  db.Repository
		rm db.Remote
	}{{r1, rm1}, {r2, rm2}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if task := e.sync(p.r, p.rm, false); task.State != db.TaskCompleted {
				t.Errorf("sync %s: %s %s", p.r.Name, task.State, task.Error)
			}
		}()
	}
	wg.Wait()
	if e.present(r1) != 200 || e.present(r2) != 200 {
		t.Fatalf("present %d and %d", e.present(r1), e.present(r2))
	}
	contents, _ := e.db.ListContents(t.Context(), db.ListParams{Limit: 1})
	arts, _ := e.db.ListArtifacts(t.Context(), db.ListParams{Limit: 1})
	if contents.Count != 200 || arts.Count != 200 {
		t.Fatalf("%d contents, %d artifacts after two syncs of the same 200 units", contents.Count, arts.Count)
	}
}

// TestRelationTargetDownloadedSlowly emits a unit whose download is slow and
// then a unit relating to it: concurrent downloads must not let the second
// overtake the first on its way to being saved.
func TestRelationTargetDownloadedSlowly(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r, rm := e.repo("r")
	files := e.files("slow", 1, false)
	e.up.slow = map[string]time.Duration{"http://up/slow/0.txt": 300 * time.Millisecond}
	var target map[string]string
	json.Unmarshal(files[0].Fields, &target)
	key, _ := json.Marshal(target)
	tag := abi.DeclarativeContent{Type: "t.tag", Fields: json.RawMessage(`{"name":"points-at-slow"}`),
		Relations: []abi.Relation{{Name: "file", To: abi.ContentRef{Type: "t.file", Key: key}}}}
	e.plug = func(abi.SyncRequest) ([]abi.DeclarativeContent, error) { return append(files, tag), nil }
	if task := e.sync(r, rm, false); task.State != db.TaskCompleted {
		t.Fatalf("sync: %s %s", task.State, task.Error)
	}
}

// durabilityProbe is the fs driver, checking at each Sync that none of the
// keys is recorded yet: a row must never name a file before it is durable.
type durabilityProbe struct {
	*fs.FS
	db *db.DB

	mu         sync.Mutex
	calls      int
	synced     map[string]bool
	violations []string
}

func (p *durabilityProbe) Sync(ctx context.Context, keys []string) error {
	var early []string
	if err := p.db.Pool().QueryRow(ctx, "SELECT coalesce(array_agg(file), '{}') FROM artifacts WHERE file = ANY($1)", keys).Scan(&early); err != nil {
		return err
	}
	if err := p.FS.Sync(ctx, keys); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	p.violations = append(p.violations, early...)
	for _, k := range keys {
		p.synced[k] = true
	}
	return nil
}

// storedKeys lists the artifact files in storage and the files artifact rows name.
func (e *env) storedKeys() (files, rows map[string]bool) {
	e.t.Helper()
	files, rows = map[string]bool{}, map[string]bool{}
	if err := e.store.List(e.t.Context(), "artifact/", func(i storage.Info) error { files[i.Key] = true; return nil }); err != nil {
		e.t.Fatal(err)
	}
	r, err := e.db.Pool().Query(e.t.Context(), "SELECT file FROM artifacts")
	if err != nil {
		e.t.Fatal(err)
	}
	defer r.Close()
	for r.Next() {
		var f string
		if err := r.Scan(&f); err != nil {
			e.t.Fatal(err)
		}
		rows[f] = true
	}
	return files, rows
}

// TestArtifactsDurableBeforeRecorded syncs through a driver that records
// which keys were made durable: every artifact row names a synced file, no
// row existed before its file's Sync, and Sync ran per batch, not per file.
func TestArtifactsDurableBeforeRecorded(t *testing.T) {
	t.Parallel()
	var probe *durabilityProbe
	e := setupStore(t, func(e *env, d *fs.FS) storage.Driver {
		probe = &durabilityProbe{FS: d, db: e.db, synced: map[string]bool{}}
		return probe
	})
	r, rm := e.repo("r")
	const n = 600
	units := e.files("durable", n, false)
	e.plug = func(abi.SyncRequest) ([]abi.DeclarativeContent, error) { return units, nil }
	if task := e.sync(r, rm, false); task.State != db.TaskCompleted {
		t.Fatalf("sync: %s %s", task.State, task.Error)
	}
	if e.present(r) != n {
		t.Fatalf("present %d", e.present(r))
	}
	files, rows := e.storedKeys()
	if len(rows) != n || len(files) != n {
		t.Fatalf("%d artifact rows, %d files, want %d", len(rows), len(files), n)
	}
	probe.mu.Lock()
	defer probe.mu.Unlock()
	for f := range rows {
		if !probe.synced[f] {
			t.Fatalf("artifact row names %s, never synced", f)
		}
	}
	if len(probe.violations) > 0 {
		t.Fatalf("%d artifacts were recorded before their Sync, e.g. %s", len(probe.violations), probe.violations[0])
	}
	if probe.calls == 0 || probe.calls*2 > n {
		t.Fatalf("%d Sync calls for %d files: want batches, not a Sync per file", probe.calls, n)
	}
}

// TestFailedSyncRecordsDownloads fails a sync on its first unit while the
// download workers fetch the next ones, which wait behind it for the emit
// order: those are recorded anyway (as orphans), so no stored file lacks a
// row and a re-run downloads only what is missing.
func TestFailedSyncRecordsDownloads(t *testing.T) {
	t.Parallel()
	e := setup(t)
	r, rm := e.repo("r")
	units := e.files("lead", 30, false)
	good := units[0].Artifacts[0].SHA256
	units[0].Artifacts[0].SHA256 = sha([]byte("not the bytes"))
	e.up.slow = map[string]time.Duration{"http://up/lead/0.txt": 300 * time.Millisecond}
	e.plug = func(abi.SyncRequest) ([]abi.DeclarativeContent, error) { return units, nil }
	if task := e.sync(r, rm, false); task.State != db.TaskFailed || !strings.Contains(string(task.Error), "lead/0.txt") {
		t.Fatalf("sync ended %s: %s", task.State, task.Error)
	}
	files, rows := e.storedKeys()
	if len(files) == 0 {
		t.Fatal("nothing was downloaded while the first unit was slow")
	}
	for f := range files {
		if !rows[f] {
			t.Fatalf("stored file %s has no artifact row after the failed sync", f)
		}
	}
	before := e.up.downloads.Load()
	units[0].Artifacts[0].SHA256 = good
	if task := e.sync(r, rm, false); task.State != db.TaskCompleted {
		t.Fatalf("re-run: %s %s", task.State, task.Error)
	}
	if got, want := e.up.downloads.Load()-before, int64(30-len(rows)); got != want {
		t.Fatalf("re-run downloaded %d files, want %d (30 less the %d recorded)", got, want, len(rows))
	}
	if e.present(r) != 30 {
		t.Fatalf("present %d", e.present(r))
	}
}
