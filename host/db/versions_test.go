package db_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/db"
)

// universe is a small set of named content units of two types in one database.
type universe struct {
	ids   map[string]uuid.UUID
	types map[uuid.UUID]string
	names map[uuid.UUID]string
}

// newUniverse creates units a..e of type file.file and f..h of type container.blob.
func newUniverse(t testing.TB, d *db.DB) *universe {
	t.Helper()
	u := &universe{ids: map[string]uuid.UUID{}, types: map[uuid.UUID]string{}, names: map[uuid.UUID]string{}}
	for typ, names := range map[string]string{"file.file": "abcde", "container.blob": "fgh"} {
		ids := mkContents(t, d, typ, typ, len(names))
		for i, id := range ids {
			name := names[i : i+1]
			u.ids[name], u.types[id], u.names[id] = id, typ, name
		}
	}
	return u
}

func (u *universe) list(keys string) []uuid.UUID {
	var out []uuid.UUID
	for _, k := range strings.Fields(keys) {
		id, ok := u.ids[k]
		if !ok {
			panic("unknown content " + k)
		}
		out = append(out, id)
	}
	return out
}

func (u *universe) set(keys string) idSet { return setOf(u.list(keys)...) }

// op is one step of a scenario.
type op struct {
	do   string // new, base, add, rm, rmall, fin, del, discard
	keys string // content names for add and rm
	n    int    // version number for base and del
	err  error  // error wanted from del
}

// runScenario applies ops to a fresh repository and to the model, checking
// every version number after every step.
func runScenario(t *testing.T, d *db.DB, u *universe, name string, retain int, ops []op) *model {
	t.Helper()
	ctx := context.Background()
	var rp *int
	if retain > 0 {
		rp = &retain
	}
	repo := mkRepo(t, d, name, rp)
	m := newModel(repo, u.types, u.names)
	m.retain = retain
	m.check(t, d, "created")
	for i, o := range ops {
		when := fmt.Sprintf("step %d %s %q %d", i, o.do, o.keys, o.n)
		switch o.do {
		case "new", "base":
			var base *int
			if o.do == "base" {
				base = &o.n
			}
			v, err := d.NewVersion(ctx, repo.ID, nil, base)
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			want := m.newVersion(base)
			if v.Number != want || v.Complete {
				t.Fatalf("%s: new version %d complete=%v, want incomplete %d", when, v.Number, v.Complete, want)
			}
			if base != nil {
				bv := must[db.RepositoryVersion](t)(d.GetVersion(ctx, repo.ID, *base))
				if v.BaseVersionID == nil || *v.BaseVersionID != bv.ID {
					t.Fatalf("%s: base_version_id %v, want %s (version %d)", when, v.BaseVersionID, bv.ID, *base)
				}
			}
		case "add":
			ok(t, d.AddContent(ctx, repo.ID, *m.building, u.list(o.keys)))
			for _, id := range u.list(o.keys) {
				m.working[id] = true
			}
		case "rm":
			ok(t, d.RemoveContent(ctx, repo.ID, *m.building, u.list(o.keys)))
			for _, id := range u.list(o.keys) {
				delete(m.working, id)
			}
		case "rmall":
			ok(t, d.RemoveAllContent(ctx, repo.ID, *m.building))
			m.working = idSet{}
		case "fin":
			n := *m.building
			v, err := d.FinalizeVersion(ctx, repo.ID, n)
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			kept := m.finalize()
			switch {
			case kept && v == nil:
				t.Fatalf("%s: FinalizeVersion returned nil for a version that changes content", when)
			case !kept && v != nil:
				t.Fatalf("%s: FinalizeVersion kept version %d that changes nothing", when, v.Number)
			case kept && (v.Number != n || !v.Complete):
				t.Fatalf("%s: finalized %d complete=%v, want %d complete", when, v.Number, v.Complete, n)
			}
		case "discard":
			// A leftover is discarded by the next NewVersion; the model just forgets it.
			m.discard()
			continue
		case "del":
			err := d.DeleteVersion(ctx, repo.ID, o.n)
			if o.err != nil {
				if !errors.Is(err, o.err) {
					t.Fatalf("%s: err %v, want %v", when, err, o.err)
				}
			} else if err != nil {
				t.Fatalf("%s: %v", when, err)
			} else {
				delete(m.versions, o.n)
			}
		default:
			t.Fatalf("bad op %q", o.do)
		}
		m.check(t, d, when)
	}
	return m
}

func TestCreateRepositoryMakesEmptyVersionZero(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	ctx := context.Background()
	r := mkRepo(t, d, "r", nil)
	if r.NextVersion != 1 || r.LatestVersion != 0 {
		t.Fatalf("next_version %d latest %d, want 1 and 0", r.NextVersion, r.LatestVersion)
	}
	v := must[db.RepositoryVersion](t)(d.LatestVersion(ctx, r.ID))
	if v.Number != 0 || !v.Complete || v.RepositoryID != r.ID || v.BaseVersionID != nil {
		t.Fatalf("latest version %+v, want complete 0 without base", v)
	}
	s := v.ContentSummary
	if s.Added == nil || s.Removed == nil || s.Present == nil || len(s.Added)+len(s.Removed)+len(s.Present) != 0 {
		t.Fatalf("summary %+v, want three empty maps", s)
	}
	if got := must[db.RepositoryVersion](t)(d.GetVersionByID(ctx, v.ID)); got.Number != 0 {
		t.Fatalf("GetVersionByID: %+v", got)
	}
	if got := versionContent(t, d, r.ID, 0); len(got) != 0 {
		t.Fatalf("version 0 holds %d units", len(got))
	}
	_, err := d.LatestVersion(ctx, uuid.New())
	wantErr(t, err, db.ErrNotFound)
	_, err = d.CreateRepository(ctx, db.Repository{PulpType: "file.file", Name: "r"})
	wantErr(t, err, db.ErrConflict)
}

func TestVersionScenarios(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	u := newUniverse(t, d)
	type want map[int]string // version -> content, the model double-checked by hand
	for _, tc := range []struct {
		name   string
		retain int
		ops    []op
		want   want
	}{
		{name: "add", ops: []op{{do: "new"}, {do: "add", keys: "a b f"}, {do: "fin"}},
			want: want{0: "", 1: "a b f"}},
		{name: "add twice and already present", ops: []op{
			{do: "new"}, {do: "add", keys: "a b"}, {do: "add", keys: "a"}, {do: "fin"},
			{do: "new"}, {do: "add", keys: "a c"}, {do: "fin"}},
			want: want{1: "a b", 2: "a b c"}},
		{name: "remove", ops: []op{
			{do: "new"}, {do: "add", keys: "a b c f"}, {do: "fin"},
			{do: "new"}, {do: "rm", keys: "b f"}, {do: "fin"}},
			want: want{1: "a b c f", 2: "a c"}},
		{name: "remove absent content is a no-op", ops: []op{
			{do: "new"}, {do: "add", keys: "a"}, {do: "fin"},
			{do: "new"}, {do: "rm", keys: "b g"}, {do: "fin"}},
			want: want{1: "a"}},
		{name: "add then remove in one version cancel out", ops: []op{
			{do: "new"}, {do: "add", keys: "a"}, {do: "fin"},
			{do: "new"}, {do: "add", keys: "b"}, {do: "rm", keys: "b"}, {do: "fin"}},
			want: want{1: "a"}},
		{name: "remove then add in one version cancel out", ops: []op{
			{do: "new"}, {do: "add", keys: "a b"}, {do: "fin"},
			{do: "new"}, {do: "rm", keys: "b"}, {do: "add", keys: "b"}, {do: "fin"}},
			want: want{1: "a b"}},
		{name: "remove add remove in one version", ops: []op{
			{do: "new"}, {do: "add", keys: "a b"}, {do: "fin"},
			{do: "new"}, {do: "rm", keys: "b"}, {do: "add", keys: "b"}, {do: "rm", keys: "b"}, {do: "fin"}},
			want: want{1: "a b", 2: "a"}},
		{name: "re-add removed content", ops: []op{
			{do: "new"}, {do: "add", keys: "a b"}, {do: "fin"},
			{do: "new"}, {do: "rm", keys: "a"}, {do: "fin"},
			{do: "new"}, {do: "add", keys: "a"}, {do: "fin"}},
			want: want{1: "a b", 2: "b", 3: "a b"}},
		{name: "remove all", ops: []op{
			{do: "new"}, {do: "add", keys: "a b g"}, {do: "fin"},
			{do: "new"}, {do: "add", keys: "c"}, {do: "rmall"}, {do: "add", keys: "a d"}, {do: "fin"}},
			want: want{1: "a b g", 2: "a d"}},
		{name: "remove all of an empty version changes nothing", ops: []op{
			{do: "new"}, {do: "rmall"}, {do: "fin"}},
			want: want{0: ""}},
		{name: "no-change version is deleted and its number reused", ops: []op{
			{do: "new"}, {do: "add", keys: "a"}, {do: "fin"},
			{do: "new"}, {do: "fin"},
			{do: "new"}, {do: "add", keys: "a"}, {do: "fin"},
			{do: "new"}, {do: "add", keys: "b"}, {do: "fin"}},
			want: want{1: "a", 2: "a b"}},
		{name: "base version", ops: []op{
			{do: "new"}, {do: "add", keys: "a b"}, {do: "fin"},
			{do: "new"}, {do: "add", keys: "c f"}, {do: "fin"},
			{do: "new"}, {do: "rm", keys: "a"}, {do: "fin"},
			{do: "base", n: 1}, {do: "fin"},
			{do: "base", n: 0}, {do: "add", keys: "h"}, {do: "fin"},
			{do: "base", n: 2}, {do: "rm", keys: "c"}, {do: "add", keys: "d"}, {do: "fin"}},
			want: want{1: "a b", 2: "a b c f", 3: "b c f", 4: "a b", 5: "h", 6: "a b d f"}},
		{name: "base version equal to latest changes nothing", ops: []op{
			{do: "new"}, {do: "add", keys: "a"}, {do: "fin"},
			{do: "new"}, {do: "add", keys: "b"}, {do: "fin"},
			{do: "new"}, {do: "rm", keys: "b"}, {do: "fin"},
			{do: "base", n: 1}, {do: "fin"}},
			want: want{1: "a", 2: "a b", 3: "a"}},
		{name: "base version of the latest", ops: []op{
			{do: "new"}, {do: "add", keys: "a"}, {do: "fin"},
			{do: "base", n: 1}, {do: "add", keys: "b"}, {do: "fin"}},
			want: want{1: "a", 2: "a b"}},
		{name: "leftover incomplete version is discarded by the next", ops: []op{
			{do: "new"}, {do: "add", keys: "a"}, {do: "fin"},
			{do: "new"}, {do: "add", keys: "b c"}, {do: "rm", keys: "a"}, {do: "discard"},
			{do: "new"}, {do: "add", keys: "d"}, {do: "fin"}},
			want: want{1: "a", 2: "a d"}},

		// DeleteVersion squashes into the next complete version.
		{name: "delete: added in n, removed in n+1", ops: []op{
			{do: "new"}, {do: "add", keys: "a"}, {do: "fin"},
			{do: "new"}, {do: "add", keys: "b f"}, {do: "fin"},
			{do: "new"}, {do: "rm", keys: "b f"}, {do: "add", keys: "c"}, {do: "fin"},
			{do: "del", n: 2}},
			want: want{0: "", 1: "a", 3: "a c"}},
		{name: "delete: removed in n, re-added in n+1", ops: []op{
			{do: "new"}, {do: "add", keys: "a b"}, {do: "fin"},
			{do: "new"}, {do: "rm", keys: "a"}, {do: "fin"},
			{do: "new"}, {do: "add", keys: "a"}, {do: "fin"},
			{do: "new"}, {do: "rm", keys: "a"}, {do: "fin"},
			{do: "del", n: 2}},
			want: want{1: "a b", 3: "a b", 4: "b"}},
		{name: "delete: removed in n, re-added in n+1, removed again later", ops: []op{
			{do: "new"}, {do: "add", keys: "a b"}, {do: "fin"},
			{do: "new"}, {do: "rm", keys: "a"}, {do: "fin"},
			{do: "new"}, {do: "add", keys: "a"}, {do: "fin"},
			{do: "new"}, {do: "rm", keys: "a"}, {do: "fin"},
			{do: "new"}, {do: "add", keys: "a"}, {do: "fin"},
			{do: "del", n: 2}, {do: "del", n: 4}},
			want: want{1: "a b", 3: "a b", 5: "a b"}},
		{name: "delete: removed in n, still absent later", ops: []op{
			{do: "new"}, {do: "add", keys: "a b"}, {do: "fin"},
			{do: "new"}, {do: "rm", keys: "a"}, {do: "fin"},
			{do: "new"}, {do: "add", keys: "c"}, {do: "fin"},
			{do: "del", n: 2}},
			want: want{1: "a b", 3: "b c"}},
		{name: "delete: added in n, still present later", ops: []op{
			{do: "new"}, {do: "add", keys: "a"}, {do: "fin"},
			{do: "new"}, {do: "add", keys: "b g"}, {do: "fin"},
			{do: "new"}, {do: "add", keys: "c"}, {do: "fin"},
			{do: "del", n: 2}},
			want: want{1: "a", 3: "a b c g"}},
		{name: "delete: added in n, removed two versions later", ops: []op{
			{do: "new"}, {do: "add", keys: "a"}, {do: "fin"},
			{do: "new"}, {do: "add", keys: "b"}, {do: "fin"},
			{do: "new"}, {do: "add", keys: "c"}, {do: "fin"},
			{do: "new"}, {do: "rm", keys: "b"}, {do: "fin"},
			{do: "del", n: 2}, {do: "del", n: 3}},
			want: want{1: "a", 4: "a c"}},
		{name: "delete: two in a row", ops: []op{
			{do: "new"}, {do: "add", keys: "a b"}, {do: "fin"},
			{do: "new"}, {do: "rm", keys: "a"}, {do: "add", keys: "c"}, {do: "fin"},
			{do: "new"}, {do: "rm", keys: "c"}, {do: "add", keys: "a"}, {do: "fin"},
			{do: "new"}, {do: "rm", keys: "b"}, {do: "fin"},
			{do: "del", n: 3}, {do: "del", n: 2}},
			want: want{1: "a b", 4: "a"}},
		{name: "delete the latest version", ops: []op{
			{do: "new"}, {do: "add", keys: "a"}, {do: "fin"},
			{do: "new"}, {do: "rm", keys: "a"}, {do: "add", keys: "b"}, {do: "fin"},
			{do: "del", n: 2},
			{do: "new"}, {do: "add", keys: "c"}, {do: "fin"}},
			want: want{1: "a", 3: "a c"}},
		{name: "delete version 0", ops: []op{
			{do: "new"}, {do: "add", keys: "a f"}, {do: "fin"},
			{do: "del", n: 0},
			{do: "new"}, {do: "rm", keys: "a"}, {do: "fin"},
			{do: "del", n: 1}},
			want: want{2: "f"}},
		{name: "delete the only complete version", ops: []op{
			{do: "del", n: 0, err: db.ErrLastVersion},
			{do: "new"}, {do: "add", keys: "a"}, {do: "fin"},
			{do: "del", n: 0},
			{do: "del", n: 1, err: db.ErrLastVersion},
			{do: "del", n: 0, err: db.ErrNotFound},
			{do: "del", n: 7, err: db.ErrNotFound}},
			want: want{1: "a"}},
		{name: "delete while a version is being built", ops: []op{
			{do: "new"}, {do: "add", keys: "a"}, {do: "fin"},
			{do: "new"}, {do: "add", keys: "b"}, {do: "fin"},
			{do: "new"}, {do: "add", keys: "c"},
			{do: "del", n: 1},
			{do: "fin"}},
			want: want{2: "a b", 3: "a b c"}},
		{name: "delete the latest complete version while a version is being built", ops: []op{
			{do: "new"}, {do: "add", keys: "a b"}, {do: "fin"},
			{do: "new"}, {do: "rm", keys: "a"}, {do: "fin"},
			{do: "new"}, {do: "add", keys: "a c"}, {do: "rm", keys: "b"},
			{do: "del", n: 2},
			{do: "fin"}},
			want: want{1: "a b", 3: "a c"}},

		{name: "retain 2", retain: 2, ops: []op{
			{do: "new"}, {do: "add", keys: "a"}, {do: "fin"},
			{do: "new"}, {do: "add", keys: "b"}, {do: "fin"},
			{do: "new"}, {do: "rm", keys: "a"}, {do: "fin"},
			{do: "new"}, {do: "add", keys: "a f"}, {do: "fin"},
			{do: "new"}, {do: "rm", keys: "b"}, {do: "fin"}},
			want: want{4: "a b f", 5: "a f"}},
		{name: "retain 1", retain: 1, ops: []op{
			{do: "new"}, {do: "add", keys: "a"}, {do: "fin"},
			{do: "new"}, {do: "add", keys: "b"}, {do: "rm", keys: "a"}, {do: "fin"},
			{do: "new"}, {do: "fin"},
			{do: "del", n: 2, err: db.ErrLastVersion}},
			want: want{2: "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := runScenario(t, d, u, tc.name, tc.retain, tc.ops)
			for n, keys := range tc.want {
				if got := versionContent(t, d, m.repo, n); !got.equal(u.set(keys)) {
					t.Errorf("version %d holds %s, want {%s}", n, got.describe(u.names), keys)
				}
			}
			for _, n := range m.numbers() {
				if _, ok := tc.want[n]; !ok && n != 0 {
					t.Errorf("version %d exists, not in the wanted versions %v", n, tc.want)
				}
			}
		})
	}
}

// TestSquashSummary spells out the summaries after a squash, independently
// of the model.
func TestSquashSummary(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	u := newUniverse(t, d)
	m := runScenario(t, d, u, "squash", 0, []op{
		{do: "new"}, {do: "add", keys: "a b f"}, {do: "fin"},
		{do: "new"}, {do: "rm", keys: "a"}, {do: "add", keys: "c g"}, {do: "fin"},
		{do: "new"}, {do: "rm", keys: "c f"}, {do: "add", keys: "a"}, {do: "fin"},
	})
	ok(t, d.DeleteVersion(context.Background(), m.repo, 2))
	v := must[db.RepositoryVersion](t)(d.GetVersion(context.Background(), m.repo, 3))
	// 1 = {a b f}; 3 = {a b g}: one blob replaced by another, no file change.
	want := db.Summary{
		Added:   map[string]int64{"container.blob": 1},
		Removed: map[string]int64{"container.blob": 1},
		Present: map[string]int64{"file.file": 2, "container.blob": 1},
	}
	if !summaryEqual(v.ContentSummary, want) {
		t.Fatalf("summary of 3 after deleting 2: %+v, want %+v", v.ContentSummary, want)
	}
}

// TestIncompleteVersionInvisible builds a version and checks that nothing a
// reader of complete versions sees changes until it is finalized, and that
// discarding it restores the membership rows exactly.
func TestIncompleteVersionInvisible(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	u := newUniverse(t, d)
	ctx := context.Background()
	m := runScenario(t, d, u, "invisible", 0, []op{
		{do: "new"}, {do: "add", keys: "a b c f"}, {do: "fin"},
		{do: "new"}, {do: "rm", keys: "b"}, {do: "fin"},
	})
	task := must[db.Task](t)(d.InsertTask(ctx, db.NewTask{Name: "sync", ExclusiveResources: []string{"repo"}}))
	other := must[db.Task](t)(d.InsertTask(ctx, db.NewTask{Name: "sync", ExclusiveResources: []string{"other"}}))
	rowsBefore := membershipRows(t, d, m.repo)
	repoBefore := must[db.Repository](t)(d.GetRepository(ctx, m.repo))

	for round, finish := range []string{"discard", "reap-by-new-version", "finalize"} {
		v := must[db.RepositoryVersion](t)(d.NewVersion(ctx, m.repo, &task.ID, nil))
		if v.Number != 3 || v.Complete || v.TaskID == nil || *v.TaskID != task.ID {
			t.Fatalf("round %d: new version %+v", round, v)
		}
		n := m.newVersion(nil)
		steps := []func(){
			func() { ok(t, d.RemoveContent(ctx, m.repo, n, u.list("a"))); delete(m.working, u.ids["a"]) },
			func() {
				ok(t, d.AddContent(ctx, m.repo, n, u.list("b d g")))
				m.working[u.ids["b"]], m.working[u.ids["d"]], m.working[u.ids["g"]] = true, true, true
			},
			func() { ok(t, d.RemoveContent(ctx, m.repo, n, u.list("d"))); delete(m.working, u.ids["d"]) },
			func() { ok(t, d.RemoveAllContent(ctx, m.repo, n)); m.working = idSet{} },
			func() {
				ok(t, d.AddContent(ctx, m.repo, n, u.list("c h")))
				m.working[u.ids["c"]], m.working[u.ids["h"]] = true, true
			},
		}
		for i, step := range steps {
			step()
			m.check(t, d, fmt.Sprintf("round %d step %d", round, i)) // complete versions unchanged, version 3 as built
			if _, err := d.GetVersion(ctx, m.repo, n); !errors.Is(err, db.ErrNotFound) {
				t.Fatalf("incomplete version readable: %v", err)
			}
			if p := must[db.Page[db.Content]](t)(d.ListContents(ctx, db.ListParams{Limit: 10,
				Filters: []db.Filter{versionFilter(m.repo, n)}})); p.Count != 0 || len(p.Items) != 0 {
				t.Fatalf("incomplete version listed: %d items, count %d", len(p.Items), p.Count)
			}
			if got := versionContent(t, d, m.repo, 2); !got.equal(u.set("a c f")) {
				t.Fatalf("latest complete version reads %s while 3 is built", got.describe(u.names))
			}
		}
		switch finish {
		case "discard":
			ok(t, d.DiscardTaskVersions(ctx, []uuid.UUID{other.ID})) // not the builder: no effect
			m.check(t, d, "discard other task")
			ok(t, d.DiscardTaskVersions(ctx, []uuid.UUID{task.ID}))
			m.discard()
		case "reap-by-new-version":
			nv := must[db.RepositoryVersion](t)(d.NewVersion(ctx, m.repo, nil, nil))
			if nv.Number != n {
				t.Fatalf("new version after leftover: %d, want %d", nv.Number, n)
			}
			m.discard()
			m.newVersion(nil)
			m.check(t, d, "after NewVersion over a leftover")
			if _, err := d.FinalizeVersion(ctx, m.repo, n); err != nil {
				t.Fatal(err)
			}
			m.finalize()
		case "finalize":
			if v, err := d.FinalizeVersion(ctx, m.repo, n); err != nil || v == nil {
				t.Fatalf("finalize: %v %v", v, err)
			}
			m.finalize()
			m.check(t, d, "finalized")
			if got := versionContent(t, d, m.repo, 3); !got.equal(u.set("c h")) {
				t.Fatalf("version 3 holds %s", got.describe(u.names))
			}
			continue
		}
		m.check(t, d, "after "+finish)
		if got := membershipRows(t, d, m.repo); !slices.Equal(fmtRows(got), fmtRows(rowsBefore)) {
			t.Fatalf("%s: membership rows\n%v\nwant\n%v", finish, fmtRows(got), fmtRows(rowsBefore))
		}
		if r := must[db.Repository](t)(d.GetRepository(ctx, m.repo)); r.NextVersion != repoBefore.NextVersion {
			t.Fatalf("%s: next_version %d, want %d", finish, r.NextVersion, repoBefore.NextVersion)
		}
		var left int
		ok(t, d.Pool().QueryRow(ctx, "SELECT count(*) FROM repository_versions WHERE repository_id = $1 AND NOT complete", m.repo).Scan(&left))
		if left != 0 {
			t.Fatalf("%s: %d incomplete versions left", finish, left)
		}
	}
}

func fmtRows(rs []membershipRow) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmt.Sprintf("%s [%d,%s)", r.Content, r.Added, fmtPtr(r.Removed))
	}
	return out
}

// TestRetention checks retain_repo_versions set at creation and lowered
// later through UpdateRepository.
func TestRetention(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	u := newUniverse(t, d)
	ctx := context.Background()
	ops := []op{}
	for _, k := range strings.Fields("a b c d e f") {
		ops = append(ops, op{do: "new"}, op{do: "add", keys: k}, op{do: "fin"})
	}
	ops = append(ops, op{do: "new"}, op{do: "rm", keys: "a c"}, op{do: "fin"})
	m := runScenario(t, d, u, "retain", 3, ops)
	if got := m.numbers(); !slices.Equal(got, []int{5, 6, 7}) {
		t.Fatalf("model kept %v", got) // the model itself
	}
	r := must[db.Repository](t)(d.GetRepository(ctx, m.repo))
	one := 1
	r.RetainRepoVersions = &one
	r = must[db.Repository](t)(d.UpdateRepository(ctx, r))
	m.retain = 1
	delete(m.versions, 5)
	delete(m.versions, 6)
	m.check(t, d, "retain lowered to 1")
	if got := versionContent(t, d, m.repo, 7); !got.equal(u.set("b d e f")) {
		t.Fatalf("version 7 holds %s", got.describe(u.names))
	}
	if r.LatestVersion != 7 {
		t.Fatalf("latest %d", r.LatestVersion)
	}
	// Unset: no more pruning.
	r.RetainRepoVersions = nil
	must[db.Repository](t)(d.UpdateRepository(ctx, r))
	m.retain = 0
	runOps(t, d, u, m, []op{{do: "new"}, {do: "add", keys: "a"}, {do: "fin"}, {do: "new"}, {do: "add", keys: "c"}, {do: "fin"}})
	if got := m.numbers(); !slices.Equal(got, []int{7, 8, 9}) {
		t.Fatalf("versions %v", got)
	}
}

// runOps continues a scenario on an existing model.
func runOps(t *testing.T, d *db.DB, u *universe, m *model, ops []op) {
	t.Helper()
	ctx := context.Background()
	for i, o := range ops {
		when := fmt.Sprintf("op %d %s %q", i, o.do, o.keys)
		switch o.do {
		case "new":
			must[db.RepositoryVersion](t)(d.NewVersion(ctx, m.repo, nil, nil))
			m.newVersion(nil)
		case "add":
			ok(t, d.AddContent(ctx, m.repo, *m.building, u.list(o.keys)))
			for _, id := range u.list(o.keys) {
				m.working[id] = true
			}
		case "fin":
			v, err := d.FinalizeVersion(ctx, m.repo, *m.building)
			ok(t, err)
			if kept := m.finalize(); kept != (v != nil) {
				t.Fatalf("%s: kept %v, returned %v", when, kept, v)
			}
		default:
			t.Fatalf("runOps: op %q", o.do)
		}
		m.check(t, d, when)
	}
}

// TestVersionsRandomized runs random sequences of version operations over a
// small universe and compares every version with the model after each step.
func TestVersionsRandomized(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	u := newUniverse(t, d)
	all := slices.Sorted(func(yield func(string) bool) {
		for k := range u.ids {
			if !yield(k) {
				return
			}
		}
	})
	for seed := range uint64(12) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x5eed))
			ctx := context.Background()
			retain := 0
			if seed%3 == 2 {
				retain = 3
			}
			var rp *int
			if retain > 0 {
				rp = &retain
			}
			repo := mkRepo(t, d, fmt.Sprint("random-", seed), rp)
			m := newModel(repo, u.types, u.names)
			m.retain = retain
			pick := func() (string, []uuid.UUID) {
				var ks []string
				for _, k := range all {
					if rng.IntN(3) == 0 {
						ks = append(ks, k)
					}
				}
				return strings.Join(ks, " "), u.list(strings.Join(ks, " "))
			}
			leftover := false // an incomplete version the model forgot is still in the database
			var log []string
			fail := func(format string, args ...any) {
				t.Helper()
				t.Fatalf("after %s: %s", strings.Join(log, "; "), fmt.Sprintf(format, args...))
			}
			for step := 0; step < 60; step++ {
				if m.building == nil {
					switch r := rng.IntN(10); {
					case r < 6 || leftover: // new version, maybe from a base; it discards a leftover
						var base *int
						if nums := m.numbers(); rng.IntN(4) == 0 {
							b := nums[rng.IntN(len(nums))]
							base = &b
						}
						if _, err := d.NewVersion(ctx, repo.ID, nil, base); err != nil {
							fail("new version (base %v): %v", fmtPtr(base), err)
						}
						m.newVersion(base)
						leftover = false
						log = append(log, "new base "+fmtPtr(base))
					default: // delete a version
						nums := m.numbers()
						n := nums[rng.IntN(len(nums))]
						err := d.DeleteVersion(ctx, repo.ID, n)
						log = append(log, fmt.Sprint("del ", n))
						switch {
						case len(nums) == 1 && !errors.Is(err, db.ErrLastVersion):
							fail("delete only version: %v", err)
						case len(nums) > 1 && err != nil:
							fail("delete: %v", err)
						case len(nums) > 1:
							delete(m.versions, n)
						}
					}
				} else {
					switch r := rng.IntN(12); {
					case r < 4:
						ks, ids := pick()
						ok(t, d.AddContent(ctx, repo.ID, *m.building, ids))
						for _, id := range ids {
							m.working[id] = true
						}
						log = append(log, "add "+ks)
					case r < 7:
						ks, ids := pick()
						ok(t, d.RemoveContent(ctx, repo.ID, *m.building, ids))
						for _, id := range ids {
							delete(m.working, id)
						}
						log = append(log, "rm "+ks)
					case r < 8:
						ok(t, d.RemoveAllContent(ctx, repo.ID, *m.building))
						m.working = idSet{}
						log = append(log, "rmall")
					case r < 11:
						n := *m.building
						v, err := d.FinalizeVersion(ctx, repo.ID, n)
						if err != nil {
							fail("finalize: %v", err)
						}
						if kept := m.finalize(); kept != (v != nil) {
							fail("finalize %d: model keeps it %v, db returned %v", n, kept, v)
						}
						log = append(log, fmt.Sprint("fin ", n))
					default:
						m.discard()
						leftover = true
						log = append(log, "leave")
					}
				}
				m.check(t, d, strings.Join(log, "; "))
			}
		})
	}
}

// TestFinalizeCompleteVersion calls FinalizeVersion on a version that is
// already complete. Squashing can leave a complete version with no changes
// of its own; finalizing it again must not delete it (and a version that
// does not exist must not be reported as "no change").
func TestFinalizeCompleteVersion(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	u := newUniverse(t, d)
	ctx := context.Background()
	m := runScenario(t, d, u, "refinalize", 0, []op{
		{do: "new"}, {do: "add", keys: "a"}, {do: "fin"},
		{do: "new"}, {do: "rm", keys: "a"}, {do: "fin"},
		{do: "del", n: 0},
		{do: "del", n: 1}, // version 2 is now the only one, with no changes
	})
	v, err := d.FinalizeVersion(ctx, m.repo, 2)
	if err == nil && v == nil {
		if _, gerr := d.GetVersion(ctx, m.repo, 2); errors.Is(gerr, db.ErrNotFound) {
			t.Fatalf("FinalizeVersion of complete version 2 deleted it: the repository has no complete version left")
		}
	}
	m.check(t, d, "refinalize")
	if _, err := d.FinalizeVersion(ctx, m.repo, 42); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("FinalizeVersion of a version that does not exist: %v, want ErrNotFound", err)
	}
}
