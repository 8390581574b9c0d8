package db_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/db"
)

// createContents makes n content units in batches through GetOrCreateContents.
func createContents(b *testing.B, d *db.DB, prefix string, n, batch int) []uuid.UUID {
	b.Helper()
	ids := make([]uuid.UUID, 0, n)
	units := make([]db.NewContent, 0, batch)
	for i := 0; i < n; i++ {
		units = append(units, db.NewContent{PulpType: "file.file", NaturalKey: fmt.Sprintf("%s-%08d", prefix, i),
			Fields: json.RawMessage(fmt.Sprintf(`{"relative_path": "%s/%08d", "size": %d}`, prefix, i, i))})
		if len(units) == batch || i == n-1 {
			cs, err := d.GetOrCreateContents(context.Background(), units)
			if err != nil {
				b.Fatal(err)
			}
			for _, c := range cs {
				ids = append(ids, c.ID)
			}
			units = units[:0]
		}
	}
	return ids
}

// addVersion makes a new version of repo holding ids in addition to the
// latest, adding in batches.
func addVersion(b *testing.B, d *db.DB, repo uuid.UUID, ids []uuid.UUID, batch int) (add, fin time.Duration) {
	b.Helper()
	ctx := context.Background()
	v, err := d.NewVersion(ctx, repo, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for i := 0; i < len(ids); i += batch {
		if err := d.AddContent(ctx, repo, v.Number, ids[i:min(i+batch, len(ids))]); err != nil {
			b.Fatal(err)
		}
	}
	add = time.Since(start)
	start = time.Now()
	if fv, err := d.FinalizeVersion(ctx, repo, v.Number); err != nil || fv == nil {
		b.Fatalf("finalize: %v %v", fv, err)
	}
	return add, time.Since(start)
}

// BenchmarkVersionAdd100k: NewVersion, AddContent of 100k new units in one
// call, FinalizeVersion, on a repository whose latest version holds 10k units.
func BenchmarkVersionAdd100k(b *testing.B) {
	const units = 100_000
	d := newDB(b)
	repo := mkRepo(b, d, "bench", nil).ID
	addVersion(b, d, repo, createContents(b, d, "base", 10_000, 10_000), 10_000)
	var add, fin time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ids := createContents(b, d, fmt.Sprint("run", i), units, 10_000)
		b.StartTimer()
		a, f := addVersion(b, d, repo, ids, units)
		add, fin = add+a, fin+f
	}
	b.StopTimer()
	b.ReportMetric(float64(units*b.N)/b.Elapsed().Seconds(), "units/s")
	b.ReportMetric(float64(add.Milliseconds())/float64(b.N), "add-ms/op")
	b.ReportMetric(float64(fin.Milliseconds())/float64(b.N), "finalize-ms/op")
}

// BenchmarkListVersionPage1M lists pages of a version holding 1,000,000
// units, built once for all sub-benchmarks (a benchmark with sub-benchmarks
// runs its body once).
func BenchmarkListVersionPage1M(b *testing.B) {
	const total = 1_000_000
	ctx := context.Background()
	d := newDB(b)
	start := time.Now()
	ids := createContents(b, d, "m", total, 10_000)
	created := time.Since(start)
	repo := mkRepo(b, d, "million", nil).ID
	add, fin := addVersion(b, d, repo, ids, 100_000)
	if _, err := d.Pool().Exec(ctx, "VACUUM ANALYZE"); err != nil {
		b.Fatal(err)
	}
	b.Logf("setup %v: GetOrCreateContents 1M in 10k batches %v, AddContent in 100k batches %v, FinalizeVersion %v",
		time.Since(start).Round(time.Millisecond), created.Round(time.Millisecond), add.Round(time.Millisecond), fin.Round(time.Millisecond))
	v, err := d.LatestVersion(ctx, repo)
	if err != nil || v.ContentSummary.Present["file.file"] != total {
		b.Fatalf("latest version %+v: %v", v, err)
	}
	version := versionFilter(repo, v.Number)
	for _, off := range []int{0, 500_000, 999_900} {
		b.Run(fmt.Sprint("offset=", off), func(b *testing.B) {
			for b.Loop() {
				p, err := d.ListContents(ctx, db.ListParams{Filters: []db.Filter{version}, Limit: 100, Offset: off})
				if err != nil || len(p.Items) != 100 || p.Count != total {
					b.Fatalf("%d items, count %d: %v", len(p.Items), p.Count, err)
				}
			}
		})
	}
	b.Run("count=summary", func(b *testing.B) {
		for b.Loop() {
			p, err := d.ListContents(ctx, db.ListParams{Filters: []db.Filter{version}, Limit: 0})
			if err != nil || p.Count != total {
				b.Fatalf("count %d: %v", p.Count, err)
			}
		}
	})
	b.Run("count=rows", func(b *testing.B) {
		for b.Loop() {
			p, err := d.ListContents(ctx, db.ListParams{Filters: []db.Filter{version, anyType}, Limit: 0})
			if err != nil || p.Count != total {
				b.Fatalf("count %d: %v", p.Count, err)
			}
		}
	})
}
