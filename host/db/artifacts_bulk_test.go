package db_test

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/pulpo/pulpo/host/db"
)

// bulkArtifact describes made-up bytes i, with sha384 recorded.
func bulkArtifact(i int) db.Artifact {
	body := fmt.Appendf(nil, "artifact %d", i)
	s256, s384 := sha256.Sum256(body), sha512.Sum384(body)
	h384 := hex.EncodeToString(s384[:])
	h256 := hex.EncodeToString(s256[:])
	return db.Artifact{File: "artifact/" + h256[:2] + "/" + h256[2:], Size: int64(len(body)), SHA256: h256, SHA384: &h384}
}

func TestGetOrCreateArtifacts(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	ctx := t.Context()
	old := must[db.Artifact](t)(d.InsertArtifact(ctx, bulkArtifact(1)))
	ok(t, d.Pool().QueryRow(ctx, "UPDATE artifacts SET timestamp_of_interest = now() - interval '1 day' WHERE id = $1 RETURNING id", old.ID).Scan(&old.ID))
	// New, existing and duplicated artifacts, out of order.
	in := []db.Artifact{bulkArtifact(3), bulkArtifact(1), bulkArtifact(2), bulkArtifact(3)}
	got := must[[]db.Artifact](t)(d.GetOrCreateArtifacts(ctx, in))
	if len(got) != len(in) {
		t.Fatalf("%d rows for %d artifacts", len(got), len(in))
	}
	for i, a := range got {
		if a.SHA256 != in[i].SHA256 || a.Size != in[i].Size || a.File != in[i].File || *a.SHA384 != *in[i].SHA384 {
			t.Errorf("row %d = %+v, want artifact %s", i, a, in[i].SHA256)
		}
	}
	if got[1].ID != old.ID || got[0].ID != got[3].ID || got[0].ID == got[2].ID {
		t.Errorf("ids %v, %v, %v, %v: want the stored row for #1 and one row per sha256", got[0].ID, got[1].ID, got[2].ID, got[3].ID)
	}
	var touched time.Time
	ok(t, d.Pool().QueryRow(ctx, "SELECT timestamp_of_interest FROM artifacts WHERE id = $1", old.ID).Scan(&touched))
	if time.Since(touched) > time.Hour {
		t.Errorf("existing artifact not touched: timestamp_of_interest %v", touched)
	}
	page := must[db.Page[db.Artifact]](t)(d.ListArtifacts(ctx, db.ListParams{Limit: 1}))
	if page.Count != 3 {
		t.Errorf("%d artifacts stored, want 3", page.Count)
	}
	if none, err := d.GetOrCreateArtifacts(ctx, nil); err != nil || none != nil {
		t.Errorf("no artifacts: %v, %v", none, err)
	}
	// Another sha256 with a stored sha384 is a conflict, not a wrong row.
	clash := bulkArtifact(4)
	clash.SHA384 = bulkArtifact(2).SHA384
	_, err := d.GetOrCreateArtifacts(ctx, []db.Artifact{bulkArtifact(5), clash})
	wantErr(t, err, db.ErrConflict)
}

// TestGetOrCreateArtifactsConcurrent has several writers insert overlapping
// sets in different orders, as syncs sharing content do: no deadlock, no
// error, one row per sha256 and every writer gets the same ids.
func TestGetOrCreateArtifactsConcurrent(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	const writers, n = 6, 300
	results := make([]map[string]string, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			mine := map[string]string{}
			for round := range 3 {
				var batch []db.Artifact
				for _, i := range r.Perm(n)[:n/2] {
					batch = append(batch, bulkArtifact(i+round*n/3))
				}
				got, err := d.GetOrCreateArtifacts(t.Context(), batch)
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				for _, a := range got {
					mine[a.SHA256] = a.ID.String()
				}
			}
			results[w] = mine
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	ids := map[string]string{}
	for w, mine := range results {
		for sha, id := range mine {
			if prev, ok := ids[sha]; ok && prev != id {
				t.Fatalf("writer %d got %s for %s, another got %s", w, id, sha, prev)
			}
			ids[sha] = id
		}
	}
	var rows, distinct int
	ok(t, d.Pool().QueryRow(t.Context(), "SELECT count(*), count(DISTINCT sha256) FROM artifacts").Scan(&rows, &distinct))
	if rows != len(ids) || distinct != rows {
		t.Errorf("%d rows, %d distinct sha256, writers saw %d", rows, distinct, len(ids))
	}
	if len(ids) == 0 {
		t.Error("no artifacts written")
	}
}
