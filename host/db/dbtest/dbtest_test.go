package dbtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pulpo/pulpo/host/db/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func exists(t *testing.T, admin *pgxpool.Pool, name string) bool {
	t.Helper()
	var ok bool
	err := admin.QueryRow(context.Background(), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&ok)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestNewPool checks that two databases are migrated, isolated from each
// other, and dropped when their test ends.
func TestNewPool(t *testing.T) {
	t.Parallel()
	admin, err := pgxpool.New(t.Context(), dbtest.ServerURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()

	var names [2]string
	t.Run("pools", func(t *testing.T) {
		var pools [2]*pgxpool.Pool
		for i := range pools {
			began := time.Now()
			pools[i] = dbtest.NewPool(t)
			t.Logf("NewPool %d took %v", i, time.Since(began).Round(time.Millisecond))
			if err := pools[i].QueryRow(t.Context(), "SELECT current_database()").Scan(&names[i]); err != nil {
				t.Fatal(err)
			}
		}
		if names[0] == names[1] {
			t.Fatalf("both pools on %s", names[0])
		}
		for _, p := range pools {
			var n int
			if err := p.QueryRow(t.Context(), "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n == 0 {
				t.Fatalf("database not migrated: %d migrations, %v", n, err)
			}
		}
		if _, err := pools[0].Exec(t.Context(), "CREATE TABLE only_here (n int)"); err != nil {
			t.Fatal(err)
		}
		var found bool
		if err := pools[1].QueryRow(t.Context(), "SELECT to_regclass('only_here') IS NOT NULL").Scan(&found); err != nil {
			t.Fatal(err)
		}
		if found {
			t.Fatal("a table created in one database shows in the other")
		}
		for _, n := range names {
			if !exists(t, admin, n) {
				t.Fatalf("%s missing during the test", n)
			}
		}
	})
	for _, n := range names {
		if exists(t, admin, n) {
			t.Errorf("%s not dropped at cleanup", n)
		}
	}
}

func BenchmarkNewDB(b *testing.B) {
	dbtest.NewDB(b) // builds the template outside the timing
	b.ResetTimer()
	for b.Loop() {
		dbtest.NewDB(b)
	}
}
