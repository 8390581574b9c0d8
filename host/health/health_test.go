package health

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pulpo/pulpo/host/storage/fs"
)

func TestReadyReportsEveryFailedCheck(t *testing.T) {
	c := New(50*time.Millisecond, nil)
	c.Add("fine", func(context.Context) error { return nil })
	c.Add("broken", func(context.Context) error { return errors.New("cannot reach the database") })
	c.Add("slow", func(ctx context.Context) error { <-ctx.Done(); return nil }) // a hung check fails by its timeout
	rec := httptest.NewRecorder()
	c.Ready().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d", rec.Code)
	}
	var rep Report
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Status != "unavailable" || len(rep.Failed) != 2 || rep.Failed[0] != "broken" || rep.Failed[1] != "slow" ||
		!rep.Checks["fine"].OK || rep.Checks["broken"].Error != "cannot reach the database" {
		t.Fatalf("report %+v", rep)
	}

	ok := New(0, nil)
	ok.Add("fine", func(context.Context) error { return nil })
	rec = httptest.NewRecorder()
	ok.Ready().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("ready: %d %s", rec.Code, rec.Body)
	}
}

func TestStorageCheck(t *testing.T) {
	root := filepath.Join(t.TempDir(), "media")
	d, err := fs.New(root)
	if err != nil {
		t.Fatal(err)
	}
	check := Storage(d)
	if err := check(t.Context()); err != nil {
		t.Fatalf("writable storage: %v", err)
	}
	left, _ := os.ReadDir(filepath.Join(root, "health"))
	if len(left) != 0 {
		t.Fatalf("probe objects left behind: %v", left)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if err := check(t.Context()); err == nil {
		t.Fatal("storage whose directory is gone reported writable")
	}
}

func TestPluginsAndMigrations(t *testing.T) {
	if Plugins(func() int { return 0 })(t.Context()) == nil || Plugins(func() int { return 2 })(t.Context()) != nil {
		t.Fatal("plugins check")
	}
	pending := Migrations(func(context.Context) ([]string, error) { return []string{"0009_new.up.sql"}, nil })
	if err := pending(t.Context()); err == nil || err.Error() != "1 migrations not applied: 0009_new.up.sql" {
		t.Fatalf("pending: %v", err)
	}
	if Migrations(func(context.Context) ([]string, error) { return nil, nil })(t.Context()) != nil {
		t.Fatal("no pending migrations failed")
	}
}
