package content

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pulpo/pulpo/host/db"
)

// quietly runs fn with the cache triggers off, so its change notifies no
// one: what the app serves afterwards shows what it cached.
func (e *env) quietly(fn func()) {
	e.t.Helper()
	for _, q := range []string{"ALTER TABLE distributions DISABLE TRIGGER distributions_cache",
		"ALTER TABLE publications DISABLE TRIGGER publications_cache"} {
		if _, err := e.db.Pool().Exec(e.ctx, q); err != nil {
			e.t.Fatal(err)
		}
	}
	fn()
	for _, q := range []string{"ALTER TABLE distributions ENABLE TRIGGER distributions_cache",
		"ALTER TABLE publications ENABLE TRIGGER publications_cache"} {
		if _, err := e.db.Pool().Exec(e.ctx, q); err != nil {
			e.t.Fatal(err)
		}
	}
}

func TestCacheInvalidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	one, _, _ := e.repo(file{path: "f", body: []byte("one"), stored: true})
	two, v2, _ := e.repo(file{path: "f", body: []byte("two"), stored: true})
	d := e.distribution(db.Distribution{PulpType: "file.version", BasePath: "d", RepositoryID: &one.ID})

	// A second content app on the same database stands for another process.
	other, err := New(Deps{DB: e.db, Storage: e.h.storage, Artifacts: e.arts, Downloader: testDownloader,
		Prefix: "/pulp/content/", CacheTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	other.Start()
	defer other.Close()
	e.eventually("other listener in place", other.resolver.listening.Load)
	viaOther := func(path string) string {
		rec := httptest.NewRecorder()
		other.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Body.String()
	}

	e.want("/pulp/content/d/f", 200, "one")
	e.want("/pulp/content/d/missing", 404, "")
	if got := viaOther("/pulp/content/d/f"); got != "one" {
		t.Fatalf("other app: %q", got)
	}

	// Unnotified changes are not seen: answers, misses included, are cached.
	e.quietly(func() {
		d.RepositoryID = &two.ID
		if _, err := e.db.UpdateDistribution(e.ctx, d); err != nil {
			t.Fatal(err)
		}
	})
	e.want("/pulp/content/d/f", 200, "one")

	// A notified change reaches every app.
	d.BasePath = "d2"
	if _, err := e.db.UpdateDistribution(e.ctx, d); err != nil {
		t.Fatal(err)
	}
	e.sync()
	if err := other.resolver.sync(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.want("/pulp/content/d/f", 404, "")
	e.want("/pulp/content/d2/f", 200, "two")
	if got := viaOther("/pulp/content/d2/f"); got != "two" {
		t.Fatalf("other app after change: %q", got)
	}

	// A new publication changes what a publishing distribution serves.
	e.distribution(db.Distribution{BasePath: "p", RepositoryID: &two.ID})
	e.want("/pulp/content/p/m", 404, "")
	e.publication(v2, false, map[string][]byte{"m": []byte("meta")}, true)
	e.want("/pulp/content/p/m", 200, "meta")

	// A lost LISTEN connection flushes everything once it is back, since
	// changes made meanwhile were never notified.
	e.quietly(func() {
		d.BasePath = "d3"
		if _, err := e.db.UpdateDistribution(e.ctx, d); err != nil {
			t.Fatal(err)
		}
	})
	e.want("/pulp/content/d2/f", 200, "two")
	if _, err := e.db.Pool().Exec(e.ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	e.eventually("flush after reconnect", func() bool {
		resp, _ := e.get("/pulp/content/d3/f")
		return resp.StatusCode == 200
	})
}

func TestCacheTTL(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(d *Deps) { d.CacheTTL = 200 * time.Millisecond })
	one, _, _ := e.repo(file{path: "f", body: []byte("one"), stored: true})
	two, _, _ := e.repo(file{path: "f", body: []byte("two"), stored: true})
	d := e.distribution(db.Distribution{PulpType: "file.version", BasePath: "d", RepositoryID: &one.ID})
	e.want("/pulp/content/d/f", 200, "one")
	e.quietly(func() {
		d.RepositoryID = &two.ID
		if _, err := e.db.UpdateDistribution(e.ctx, d); err != nil {
			t.Fatal(err)
		}
	})
	e.want("/pulp/content/d/f", 200, "one")
	time.Sleep(250 * time.Millisecond)
	e.want("/pulp/content/d/f", 200, "two")
}
