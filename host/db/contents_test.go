package db_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/db"
)

func contentRows(t *testing.T, d *db.DB) (total, distinct int) {
	t.Helper()
	ok(t, d.Pool().QueryRow(context.Background(),
		"SELECT count(*), count(DISTINCT (pulp_type, natural_key)) FROM contents").Scan(&total, &distinct))
	return total, distinct
}

func TestGetOrCreateContentsDuplicates(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	ctx := context.Background()
	nc := func(typ, key string) db.NewContent {
		return db.NewContent{PulpType: typ, NaturalKey: key, Fields: json.RawMessage(fmt.Sprintf(`{"k": %q}`, key))}
	}
	in := []db.NewContent{nc("file.file", "b"), nc("file.file", "a"), nc("file.file", "b"), nc("container.blob", "a"), nc("file.file", "a")}
	out := must[[]db.Content](t)(d.GetOrCreateContents(ctx, in))
	if len(out) != len(in) {
		t.Fatalf("%d results for %d inputs", len(out), len(in))
	}
	for i, c := range out {
		if c.PulpType != in[i].PulpType || c.NaturalKey != in[i].NaturalKey {
			t.Fatalf("result %d is %s/%s, want %s/%s (results must follow the input order)", i, c.PulpType, c.NaturalKey, in[i].PulpType, in[i].NaturalKey)
		}
	}
	if out[0].ID != out[2].ID || out[1].ID != out[4].ID {
		t.Fatalf("duplicate inputs got different rows")
	}
	if out[1].ID == out[3].ID || out[0].ID == out[1].ID {
		t.Fatalf("distinct units share a row")
	}
	if total, distinct := contentRows(t, d); total != 3 || distinct != 3 {
		t.Fatalf("%d rows (%d distinct), want 3", total, distinct)
	}
	// Again, with one new unit: the old rows come back unchanged.
	again := must[[]db.Content](t)(d.GetOrCreateContents(ctx, []db.NewContent{nc("file.file", "c"), nc("file.file", "a"), nc("container.blob", "a")}))
	if again[1].ID != out[1].ID || again[2].ID != out[3].ID || string(again[1].Fields) != string(out[1].Fields) {
		t.Fatalf("existing rows not returned")
	}
	if total, _ := contentRows(t, d); total != 4 {
		t.Fatalf("%d rows, want 4", total)
	}
	got := must[db.Content](t)(d.GetContent(ctx, again[0].ID))
	var f map[string]string
	ok(t, json.Unmarshal(got.Fields, &f))
	if got.NaturalKey != "c" || f["k"] != "c" {
		t.Fatalf("stored %+v", got)
	}
	if empty := must[[]db.Content](t)(d.GetOrCreateContents(ctx, nil)); len(empty) != 0 {
		t.Fatalf("%d results for no input", len(empty))
	}
}

// TestGetOrCreateContentsNoFields: Fields is optional in NewContent (the
// column defaults to {}), so leaving it nil must work.
func TestGetOrCreateContentsNoFields(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	out, err := d.GetOrCreateContents(context.Background(), []db.NewContent{{PulpType: "file.file", NaturalKey: "nofields"}})
	if err != nil {
		t.Fatalf("GetOrCreateContents without Fields: %v", err)
	}
	if string(out[0].Fields) != "{}" {
		t.Fatalf("fields %s, want {}", out[0].Fields)
	}
}

// TestGetOrCreateContentsConcurrent runs callers with overlapping, differently
// ordered sets at once: no error (no deadlock, no unique violation), one row
// per unit, and every caller sees the same id for a unit.
func TestGetOrCreateContentsConcurrent(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	const callers, per, rounds = 8, 300, 3
	for round := range rounds {
		var wg sync.WaitGroup
		results := make([][]db.Content, callers)
		inputs := make([][]db.NewContent, callers)
		errs := make([]error, callers)
		for g := range callers {
			rng := rand.New(rand.NewPCG(uint64(g), uint64(round)))
			for i := range per {
				k := (g*per/3 + i) % (callers * per / 3) // neighbours overlap by two thirds
				inputs[g] = append(inputs[g], db.NewContent{PulpType: []string{"file.file", "container.blob"}[k%2],
					NaturalKey: fmt.Sprintf("r%d-%d", round, k), Fields: json.RawMessage(`{}`)})
			}
			rng.Shuffle(len(inputs[g]), func(i, j int) { inputs[g][i], inputs[g][j] = inputs[g][j], inputs[g][i] })
			wg.Go(func() { results[g], errs[g] = d.GetOrCreateContents(context.Background(), inputs[g]) })
		}
		wg.Wait()
		ids := map[string]uuid.UUID{}
		for g := range callers {
			if errs[g] != nil {
				t.Fatalf("round %d caller %d: %v", round, g, errs[g])
			}
			for i, c := range results[g] {
				key := inputs[g][i].PulpType + "/" + inputs[g][i].NaturalKey
				if c.PulpType+"/"+c.NaturalKey != key {
					t.Fatalf("caller %d result %d is %s/%s, want %s", g, i, c.PulpType, c.NaturalKey, key)
				}
				if prev, seen := ids[key]; seen && prev != c.ID {
					t.Fatalf("%s has two ids: %s and %s", key, prev, c.ID)
				}
				ids[key] = c.ID
			}
		}
		if len(ids) != callers*per/3 {
			t.Fatalf("round %d: %d distinct units, want %d", round, len(ids), callers*per/3)
		}
	}
	if total, distinct := contentRows(t, d); total != distinct || total != rounds*callers*per/3 {
		t.Fatalf("%d rows, %d distinct, want %d", total, distinct, rounds*callers*per/3)
	}
}
