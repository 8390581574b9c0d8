package db_test

import (
	"sync"
	"testing"

	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/db/dbtest"
)

// TestConcurrentMigrate starts from an empty schema and migrates from four
// goroutines at once, as four processes starting together would: the
// advisory lock must make every migration apply exactly once.
func TestConcurrentMigrate(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	if _, err := pool.Exec(t.Context(), "DROP SCHEMA public CASCADE; CREATE SCHEMA public"); err != nil {
		t.Fatal(err)
	}
	pending, err := db.Pending(t.Context(), pool)
	if err != nil || len(pending) < 2 {
		t.Fatalf("pending on an empty schema: %v, %v", pending, err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = db.Migrate(t.Context(), pool) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("migrate %d: %v", i, err)
		}
	}
	var applied int
	if err := pool.QueryRow(t.Context(), "SELECT count(*) FROM schema_migrations").Scan(&applied); err != nil || applied != len(pending) {
		t.Fatalf("%d migrations recorded (want %d): %v", applied, len(pending), err)
	}
	if left, err := db.Pending(t.Context(), pool); err != nil || len(left) != 0 {
		t.Fatalf("still pending: %v, %v", left, err)
	}
}
