package db_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/db"
)

// listFixture is a repository whose version 1 holds 25 files and 7 blobs and
// whose version 2 drops the first 5 files; 4 more files belong to no version.
type listFixture struct {
	d      *db.DB
	repo   uuid.UUID
	files  []uuid.UUID
	blobs  []uuid.UUID
	others []uuid.UUID
}

func newListFixture(t *testing.T) *listFixture {
	t.Helper()
	ctx := context.Background()
	d := newDB(t)
	f := &listFixture{d: d}
	f.files = mkContents(t, d, "file.file", "f", 25)
	f.blobs = mkContents(t, d, "container.blob", "b", 7)
	f.others = mkContents(t, d, "file.file", "o", 4)
	f.repo = mkRepo(t, d, "list", nil).ID
	for _, step := range []func(n int) error{
		func(n int) error { return d.AddContent(ctx, f.repo, n, append(slices.Clone(f.files), f.blobs...)) },
		func(n int) error { return d.RemoveContent(ctx, f.repo, n, f.files[:5]) },
	} {
		v := must[db.RepositoryVersion](t)(d.NewVersion(ctx, f.repo, nil, nil))
		ok(t, step(v.Number))
		if fin, err := d.FinalizeVersion(ctx, f.repo, v.Number); err != nil || fin == nil {
			t.Fatalf("finalize: %v %v", fin, err)
		}
	}
	return f
}

func (f *listFixture) sqlCount(t *testing.T, n int, typ string) int64 {
	t.Helper()
	var c int64
	ok(t, f.d.Pool().QueryRow(context.Background(), `SELECT count(*) FROM repository_content rc JOIN contents c ON c.id = rc.content_id
		WHERE rc.repository_id = $1 AND rc.version_added <= $2 AND (rc.version_removed IS NULL OR rc.version_removed > $2)
		  AND ($3 = '' OR c.pulp_type = $3)`, f.repo, n, typ).Scan(&c))
	return c
}

func TestListContentsCountFromSummary(t *testing.T) {
	t.Parallel()
	f := newListFixture(t)
	ctx := context.Background()
	typeFilter := func(typ string) db.Filter { return db.Filter{Field: "pulp_type", Value: typ} }
	for _, tc := range []struct {
		n    int
		typ  string
		want int64
	}{
		{0, "", 0}, {1, "", 32}, {2, "", 27},
		{1, "file.file", 25}, {2, "file.file", 20}, {2, "container.blob", 7}, {2, "rpm.package", 0},
	} {
		filters := []db.Filter{versionFilter(f.repo, tc.n)}
		if tc.typ != "" {
			filters = append(filters, typeFilter(tc.typ))
		}
		fast := must[db.Page[db.Content]](t)(f.d.ListContents(ctx, db.ListParams{Filters: filters, Limit: 100}))
		slow := must[db.Page[db.Content]](t)(f.d.ListContents(ctx, db.ListParams{Filters: append(filters, anyType), Limit: 100}))
		if fast.Count != tc.want || slow.Count != tc.want || f.sqlCount(t, tc.n, tc.typ) != tc.want ||
			len(fast.Items) != int(tc.want) || len(slow.Items) != int(tc.want) {
			t.Errorf("version %d type %q: summary count %d (%d items), real count %d (%d items), sql %d, want %d",
				tc.n, tc.typ, fast.Count, len(fast.Items), slow.Count, len(slow.Items), f.sqlCount(t, tc.n, tc.typ), tc.want)
		}
		for _, c := range fast.Items {
			if tc.typ != "" && c.PulpType != tc.typ {
				t.Errorf("pulp_type filter %q listed a %s", tc.typ, c.PulpType)
			}
		}
	}
	// Added and removed in a version.
	if got, _ := listAll(t, f.d, db.Filter{Field: "repository_version_removed", Value: db.VersionRef{Repository: f.repo, Number: 2}}); !got.equal(setOf(f.files[:5]...)) {
		t.Errorf("removed in 2: %d units", len(got))
	}
	if got, _ := listAll(t, f.d, db.Filter{Field: "repository_version_added", Value: db.VersionRef{Repository: f.repo, Number: 2}}); len(got) != 0 {
		t.Errorf("added in 2: %d units", len(got))
	}
	if got, _ := listAll(t, f.d, db.Filter{Field: "repository_version_added", Value: db.VersionRef{Repository: f.repo, Number: 1}}); len(got) != 32 {
		t.Errorf("added in 1: %d units", len(got))
	}
	// Everything, no version filter.
	if got, count := listAll(t, f.d); len(got) != 36 || count != 36 {
		t.Errorf("all content: %d items, count %d", len(got), count)
	}
}

func TestListContentsPagesAndOrdering(t *testing.T) {
	t.Parallel()
	f := newListFixture(t)
	ctx := context.Background()
	meta := map[uuid.UUID]db.Content{}
	for _, c := range must[db.Page[db.Content]](t)(f.d.ListContents(ctx, db.ListParams{Limit: 1000})).Items {
		meta[c.ID] = c
	}
	byID := func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) }
	path := func(id uuid.UUID) string {
		var fl struct {
			RelativePath string `json:"relative_path"`
		}
		if err := json.Unmarshal(meta[id].Fields, &fl); err != nil {
			t.Fatal(err)
		}
		return fl.RelativePath
	}
	for _, tc := range []struct {
		name     string
		ordering []string
		less     func(a, b uuid.UUID) int // the expected order
	}{
		{"default newest first", nil, func(a, b uuid.UUID) int { return byID(b, a) }},
		{"pulp_created", []string{"pulp_created"}, byID},
		{"-pulp_created", []string{"-pulp_created"}, func(a, b uuid.UUID) int { return byID(b, a) }},
		{"pulp_type then id", []string{"pulp_type"}, func(a, b uuid.UUID) int {
			return cmp.Or(strings.Compare(meta[a].PulpType, meta[b].PulpType), byID(a, b))
		}},
		{"-pulp_type then id desc", []string{"-pulp_type"}, func(a, b uuid.UUID) int {
			return cmp.Or(strings.Compare(meta[b].PulpType, meta[a].PulpType), byID(b, a))
		}},
		{"-fields.relative_path", []string{"-fields.relative_path"}, func(a, b uuid.UUID) int {
			return strings.Compare(path(b), path(a))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want := slices.Collect(func(yield func(uuid.UUID) bool) {
				for id := range versionContent(t, f.d, f.repo, 2) {
					if !yield(id) {
						return
					}
				}
			})
			slices.SortFunc(want, tc.less)
			for _, limit := range []int{1, 5, 10, 27, 100} {
				var got []uuid.UUID
				for off := 0; off < 40; off += limit {
					p, err := f.d.ListContents(ctx, db.ListParams{Filters: []db.Filter{versionFilter(f.repo, 2)},
						Ordering: tc.ordering, Limit: limit, Offset: off})
					ok(t, err)
					if p.Count != 27 {
						t.Fatalf("limit %d offset %d: count %d", limit, off, p.Count)
					}
					if wantLen := max(0, min(limit, 27-off)); len(p.Items) != wantLen {
						t.Fatalf("limit %d offset %d: %d items, want %d", limit, off, len(p.Items), wantLen)
					}
					for _, c := range p.Items {
						got = append(got, c.ID)
					}
				}
				if !slices.Equal(got, want) {
					t.Fatalf("limit %d: pages joined differ from the expected order", limit)
				}
			}
		})
	}
}

func TestListContentFilters(t *testing.T) {
	t.Parallel()
	f := newListFixture(t)
	for _, tc := range []struct {
		name    string
		filters []db.Filter
		want    idSet
	}{
		{"pulp_type", []db.Filter{{Field: "pulp_type", Value: "container.blob"}}, setOf(f.blobs...)},
		{"pulp_type in", []db.Filter{{Field: "pulp_type", Op: "in", Value: []string{"container.blob", "x.y"}}}, setOf(f.blobs...)},
		{"pulp_id in", []db.Filter{{Field: "pulp_id", Op: "in", Value: []uuid.UUID{f.files[3], f.blobs[1]}}}, setOf(f.files[3], f.blobs[1])},
		{"field exact", []db.Filter{db.ContentFieldFilter("relative_path", "", "f/00003")}, setOf(f.files[3])},
		{"field startswith", []db.Filter{db.ContentFieldFilter("relative_path", "startswith", "o/")}, setOf(f.others...)},
		{"field like is escaped", []db.Filter{db.ContentFieldFilter("relative_path", "contains", "%")}, setOf()},
		{"version and type and field", []db.Filter{versionFilter(f.repo, 2), {Field: "pulp_type", Value: "file.file"},
			db.ContentFieldFilter("relative_path", "istartswith", "F/0000")}, setOf(f.files[5:10]...)},
		{"orphans", []db.Filter{{Field: "orphaned_for", Value: -1}}, setOf(f.others...)},
	} {
		if got, count := listAll(t, f.d, tc.filters...); !got.equal(tc.want) || count != int64(len(tc.want)) {
			t.Errorf("%s: %d items (count %d), want %d", tc.name, len(got), count, len(tc.want))
		}
	}
}

func TestListBadFilters(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	ctx := context.Background()
	ref := db.VersionRef{Repository: uuid.New(), Number: 0}
	for _, tc := range []struct {
		name string
		list func() error
	}{
		{"content unknown field", func() error {
			_, err := d.ListContents(ctx, db.ListParams{Filters: []db.Filter{{Field: "nope", Value: 1}}})
			return err
		}},
		{"content unknown lookup", func() error {
			_, err := d.ListContents(ctx, db.ListParams{Filters: []db.Filter{{Field: "pulp_type", Op: "regex", Value: "x"}}})
			return err
		}},
		{"content contains non-text", func() error {
			_, err := d.ListContents(ctx, db.ListParams{Filters: []db.Filter{{Field: "pulp_type", Op: "contains", Value: 3}}})
			return err
		}},
		{"version filter without a version", func() error {
			_, err := d.ListContents(ctx, db.ListParams{Filters: []db.Filter{{Field: "repository_version", Value: "/pulp/api/v3/x/"}}})
			return err
		}},
		{"version filter without a version, with a type", func() error {
			_, err := d.ListContents(ctx, db.ListParams{Filters: []db.Filter{{Field: "repository_version_added", Value: 1}, {Field: "pulp_type", Value: "a"}}})
			return err
		}},
		{"bad plugin field name", func() error {
			_, err := d.ListContents(ctx, db.ListParams{Filters: []db.Filter{{Field: "fields.x'; DROP TABLE contents; --", Value: 1}}})
			return err
		}},
		{"bad plugin field ordering", func() error {
			_, err := d.ListContents(ctx, db.ListParams{Ordering: []string{"-fields.Bad"}})
			return err
		}},
		{"content unknown ordering", func() error {
			_, err := d.ListContents(ctx, db.ListParams{Ordering: []string{"-nope"}})
			return err
		}},
		{"content unknown ordering with version filter", func() error {
			_, err := d.ListContents(ctx, db.ListParams{Filters: []db.Filter{{Field: "repository_version", Value: ref}}, Ordering: []string{"nope"}})
			return err
		}},
		{"repository unknown field", func() error {
			_, err := d.ListRepositories(ctx, db.ListParams{Filters: []db.Filter{{Field: "next", Value: 1}}})
			return err
		}},
		{"repository ordering", func() error {
			_, err := d.ListRepositories(ctx, db.ListParams{Ordering: []string{"pulp_labels"}})
			return err
		}},
		{"empty label selector", func() error {
			_, err := d.ListRepositories(ctx, db.ListParams{Filters: []db.Filter{{Field: "pulp_label_select", Value: ""}}})
			return err
		}},
		{"empty label selector term", func() error {
			_, err := d.ListRepositories(ctx, db.ListParams{Filters: []db.Filter{{Field: "pulp_label_select", Value: "a=1,,b"}}})
			return err
		}},
		{"task unknown field", func() error {
			_, err := d.ListTasks(ctx, db.ListParams{Filters: []db.Filter{{Field: "args", Value: "x"}}})
			return err
		}},
		{"artifact version filter without a version", func() error {
			_, err := d.ListArtifacts(ctx, db.ListParams{Filters: []db.Filter{{Field: "repository_version", Value: "/pulp/api/v3/x/"}}})
			return err
		}},
		{"artifact unknown field", func() error {
			_, err := d.ListArtifacts(ctx, db.ListParams{Filters: []db.Filter{{Field: "file", Value: "x"}}})
			return err
		}},
	} {
		if err := tc.list(); !errors.Is(err, db.ErrBadFilter) {
			t.Errorf("%s: err %v, want ErrBadFilter", tc.name, err)
		}
	}
}

func TestRepositoryLabelSelect(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	ctx := context.Background()
	for name, labels := range map[string]map[string]string{
		"a": {"env": "prod", "team": "ops-east"},
		"b": {"env": "prod", "x": "1"},
		"c": {"env": "dev", "team": "web"},
		"d": {},
		"e": {"env": "Prod%", "x": ""},
	} {
		must[db.Repository](t)(d.CreateRepository(ctx, db.Repository{PulpType: "file.file", Name: name, PulpLabels: labels}))
	}
	for _, tc := range []struct{ sel, want string }{
		{"env=prod", "a b"},
		{"env=prod,!x", "a"},
		{"env=prod, !x", "a"},
		{"env!=prod", "c d e"},
		{"team~OPS", "a"},
		{"env~%", "e"},
		{"x", "b e"},
		{"!x", "a c d"},
		{"env=prod,team~ops", "a"},
		{"env=nope", ""},
		{"x=", "e"},
	} {
		p, err := d.ListRepositories(ctx, db.ListParams{Filters: []db.Filter{{Field: "pulp_label_select", Value: tc.sel}}, Limit: 100})
		if err != nil {
			t.Errorf("%q: %v", tc.sel, err)
			continue
		}
		var got []string
		for _, r := range p.Items {
			got = append(got, r.Name)
		}
		sort.Strings(got)
		if strings.Join(got, " ") != tc.want || p.Count != int64(len(got)) {
			t.Errorf("%q: got %v (count %d), want %q", tc.sel, got, p.Count, tc.want)
		}
	}
}

// TestVersionFiltersSeeOnlyCompleteVersions lists content (and artifacts) of
// version numbers that are not complete versions: one being built, one
// deleted, one never made. With the repository_version filter alone the list
// is empty (the count comes from the missing summary), and it must stay empty
// when any other filter is added; otherwise an API client can read a version
// while it is built (repository_version=<href of the next number>&pulp_type=x).
func TestVersionFiltersSeeOnlyCompleteVersions(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	u := newUniverse(t, d)
	ctx := context.Background()
	art := must[db.Artifact](t)(d.InsertArtifact(ctx, db.Artifact{File: "artifact/c", Size: 1, SHA256: strings.Repeat("c", 64)}))
	ok(t, d.AddContentArtifacts(ctx, []db.ContentArtifact{{ContentID: u.ids["c"], ArtifactID: &art.ID, RelativePath: "c"}}))
	m := runScenario(t, d, u, "filters", 0, []op{
		{do: "new"}, {do: "add", keys: "a b"}, {do: "fin"},
		{do: "new"}, {do: "add", keys: "c"}, {do: "fin"},
		{do: "new"}, {do: "rm", keys: "a"}, {do: "fin"},
		{do: "del", n: 2},
		{do: "new"}, {do: "add", keys: "c d"}, {do: "rm", keys: "b"}, // version 4 being built
	})
	for _, n := range []int{2, 4, 9} {
		for _, field := range []string{"repository_version", "repository_version_added", "repository_version_removed"} {
			f := db.Filter{Field: field, Value: db.VersionRef{Repository: m.repo, Number: n}}
			for _, extra := range [][]db.Filter{nil, {anyType}, {{Field: "pulp_type", Value: "file.file"}, anyType}} {
				if got, count := listAll(t, d, append([]db.Filter{f}, extra...)...); len(got) != 0 || count != 0 {
					t.Errorf("%s=%d with %d more filters: lists %s (count %d) though version %d is not a complete version",
						field, n, len(extra), got.describe(u.names), count, n)
				}
			}
		}
		p := must[db.Page[db.Artifact]](t)(d.ListArtifacts(ctx, db.ListParams{Limit: 10,
			Filters: []db.Filter{{Field: "repository_version", Value: db.VersionRef{Repository: m.repo, Number: n}}}}))
		if p.Count != 0 || len(p.Items) != 0 {
			t.Errorf("artifacts of version %d: %d (count %d), want none", n, len(p.Items), p.Count)
		}
	}
	// The complete versions do list.
	p := must[db.Page[db.Artifact]](t)(d.ListArtifacts(ctx, db.ListParams{Limit: 10,
		Filters: []db.Filter{{Field: "repository_version", Value: db.VersionRef{Repository: m.repo, Number: 3}}}}))
	if p.Count != 1 || len(p.Items) != 1 || p.Items[0].ID != art.ID {
		t.Errorf("artifacts of version 3: %d (count %d), want the artifact of c", len(p.Items), p.Count)
	}
}
