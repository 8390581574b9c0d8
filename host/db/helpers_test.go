package db_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/db/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// newDB gives the test its own freshly migrated database.
func newDB(t testing.TB) *db.DB {
	t.Helper()
	return db.New(dbtest.NewPool(t), nil)
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func ok(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
}

func mkRepo(t testing.TB, d *db.DB, name string, retain *int) db.Repository {
	t.Helper()
	return must[db.Repository](t)(d.CreateRepository(context.Background(),
		db.Repository{PulpType: "file.file", Name: name, RetainRepoVersions: retain}))
}

// mkContents creates n content units of type typ whose natural keys start with prefix.
func mkContents(t testing.TB, d *db.DB, typ, prefix string, n int) []uuid.UUID {
	t.Helper()
	units := make([]db.NewContent, n)
	for i := range units {
		units[i] = db.NewContent{PulpType: typ, NaturalKey: fmt.Sprintf("%s-%05d", prefix, i),
			Fields: json.RawMessage(fmt.Sprintf(`{"relative_path": "%s/%05d", "n": %d}`, prefix, i, i))}
	}
	cs := must[[]db.Content](t)(d.GetOrCreateContents(context.Background(), units))
	ids := make([]uuid.UUID, n)
	for i, c := range cs {
		ids[i] = c.ID
	}
	return ids
}

type idSet map[uuid.UUID]bool

func setOf(ids ...uuid.UUID) idSet {
	s := idSet{}
	for _, id := range ids {
		s[id] = true
	}
	return s
}

func (s idSet) clone() idSet { return maps.Clone(s) }

func (s idSet) equal(o idSet) bool { return maps.Equal(s, o) }

// describe names the members through names (falling back to the uuid), sorted.
func (s idSet) describe(names map[uuid.UUID]string) string {
	var out []string
	for id := range s {
		if n, ok := names[id]; ok {
			out = append(out, n)
		} else {
			out = append(out, id.String())
		}
	}
	sort.Strings(out)
	return "{" + strings.Join(out, ",") + "}"
}

// listAll lists every content unit matching filters, in pages of 1000.
func listAll(t testing.TB, d *db.DB, filters ...db.Filter) (idSet, int64) {
	t.Helper()
	s := idSet{}
	var count int64 = -1
	for off := 0; ; off += 1000 {
		p, err := d.ListContents(context.Background(), db.ListParams{Filters: filters, Limit: 1000, Offset: off})
		if err != nil {
			t.Fatalf("list contents %v: %v", filters, err)
		}
		if count == -1 {
			count = p.Count
		}
		for _, c := range p.Items {
			if s[c.ID] {
				t.Fatalf("list contents %v: %s listed twice", filters, c.ID)
			}
			s[c.ID] = true
		}
		if len(p.Items) < 1000 {
			return s, count
		}
	}
}

func versionFilter(repo uuid.UUID, n int) db.Filter {
	return db.Filter{Field: "repository_version", Value: db.VersionRef{Repository: repo, Number: n}}
}

// anyType matches every content and stops ListContents from taking its count
// from a version summary, so the list reflects the membership rows alone
// (which also works for a version still being built).
var anyType = db.Filter{Field: "pulp_type", Op: "startswith", Value: ""}

// versionContent lists version n of repo through the repository_version filter
// and checks the count reported (from the summary) matches the items.
func versionContent(t testing.TB, d *db.DB, repo uuid.UUID, n int) idSet {
	t.Helper()
	s, count := listAll(t, d, versionFilter(repo, n))
	if count != int64(len(s)) {
		t.Fatalf("version %d: count %d but %d items listed", n, count, len(s))
	}
	return s
}

// slowVersionContent lists complete version n with a no-op extra filter, so
// the count comes from counting rows rather than from the summary.
func slowVersionContent(t testing.TB, d *db.DB, repo uuid.UUID, n int) idSet {
	t.Helper()
	s, count := listAll(t, d, versionFilter(repo, n), anyType)
	if count != int64(len(s)) {
		t.Fatalf("version %d (counted): count %d but %d items listed", n, count, len(s))
	}
	return s
}

// sqlVersionContent reads the membership of version number n, complete or
// not, straight from repository_content.
func sqlVersionContent(t testing.TB, d *db.DB, repo uuid.UUID, n int) idSet {
	t.Helper()
	rows, err := d.Pool().Query(context.Background(), `SELECT content_id FROM repository_content
		WHERE repository_id = $1 AND version_added <= $2 AND (version_removed IS NULL OR version_removed > $2)`, repo, n)
	ok(t, err)
	defer rows.Close()
	s := idSet{}
	for rows.Next() {
		var id uuid.UUID
		ok(t, rows.Scan(&id))
		if s[id] {
			t.Fatalf("version %d: content %s is a member twice", n, id)
		}
		s[id] = true
	}
	ok(t, rows.Err())
	return s
}

// membershipRow is a row of repository_content.
type membershipRow struct {
	Content uuid.UUID
	Added   int
	Removed *int
}

func membershipRows(t testing.TB, d *db.DB, repo uuid.UUID) []membershipRow {
	t.Helper()
	rows, err := d.Pool().Query(context.Background(), `SELECT content_id, version_added, version_removed
		FROM repository_content WHERE repository_id = $1 ORDER BY content_id, version_added`, repo)
	ok(t, err)
	defer rows.Close()
	var out []membershipRow
	for rows.Next() {
		var r membershipRow
		ok(t, rows.Scan(&r.Content, &r.Added, &r.Removed))
		out = append(out, r)
	}
	ok(t, rows.Err())
	return out
}

// checkRowInvariants checks the membership rows of repo: the intervals of one
// content neither overlap nor touch (a touching pair would be one
// membership split in two, which makes the "added" count of a version wrong),
// and every bound names a version that exists, complete or being built.
func checkRowInvariants(t testing.TB, d *db.DB, repo uuid.UUID) {
	t.Helper()
	var nums []int
	rows, err := d.Pool().Query(context.Background(), `SELECT number FROM repository_versions WHERE repository_id = $1`, repo)
	ok(t, err)
	for rows.Next() {
		var n int
		ok(t, rows.Scan(&n))
		nums = append(nums, n)
	}
	ok(t, rows.Err())
	rs := membershipRows(t, d, repo)
	for i, r := range rs {
		if !slices.Contains(nums, r.Added) {
			t.Errorf("row %s added in %d: no such version (versions %v)", r.Content, r.Added, nums)
		}
		if r.Removed != nil && !slices.Contains(nums, *r.Removed) {
			t.Errorf("row %s removed in %d: no such version (versions %v)", r.Content, *r.Removed, nums)
		}
		if i > 0 && rs[i-1].Content == r.Content {
			p := rs[i-1]
			if p.Removed == nil || *p.Removed >= r.Added {
				t.Errorf("content %s: rows [%d,%v) and [%d,%v) overlap or touch", r.Content, p.Added, fmtPtr(p.Removed), r.Added, fmtPtr(r.Removed))
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

func fmtPtr(p *int) string {
	if p == nil {
		return "∞"
	}
	return fmt.Sprint(*p)
}

// model is the obviously-correct picture of a repository: the content set of
// every complete version, and the set being built.
type model struct {
	repo     uuid.UUID
	types    map[uuid.UUID]string
	names    map[uuid.UUID]string
	versions map[int]idSet // complete versions
	next     int           // repositories.next_version
	building *int          // number of the incomplete version, if any
	working  idSet
	retain   int // 0: keep all
}

func newModel(repo db.Repository, types, names map[uuid.UUID]string) *model {
	return &model{repo: repo.ID, types: types, names: names, versions: map[int]idSet{0: {}}, next: 1}
}

func (m *model) numbers() []int {
	return slices.Sorted(maps.Keys(m.versions))
}

func (m *model) latest() int { return slices.Max(m.numbers()) }

func (m *model) newVersion(base *int) int {
	src := m.latest()
	if base != nil {
		src = *base
	}
	n := m.next
	m.building = &n
	m.working = m.versions[src].clone()
	return n
}

// finalize reports whether the version is kept (it changed something).
func (m *model) finalize() bool {
	n := *m.building
	m.building = nil
	if m.working.equal(m.versions[m.latest()]) {
		return false
	}
	m.versions[n] = m.working
	m.next = n + 1
	if m.retain > 0 {
		nums := m.numbers()
		for len(nums) > m.retain {
			delete(m.versions, nums[0])
			nums = nums[1:]
		}
	}
	return true
}

func (m *model) discard() { m.building = nil; m.working = nil }

// summaryOf computes the expected summary of complete version n.
func (m *model) summaryOf(n int) db.Summary {
	s := db.Summary{Added: map[string]int64{}, Removed: map[string]int64{}, Present: map[string]int64{}}
	prev := idSet{}
	for _, k := range m.numbers() {
		if k < n {
			prev = m.versions[k]
		}
	}
	cur := m.versions[n]
	for id := range cur {
		s.Present[m.types[id]]++
		if !prev[id] {
			s.Added[m.types[id]]++
		}
	}
	for id := range prev {
		if !cur[id] {
			s.Removed[m.types[id]]++
		}
	}
	return s
}

func summaryEqual(a, b db.Summary) bool {
	norm := func(m map[string]int64) map[string]int64 {
		out := map[string]int64{}
		for k, v := range m {
			if v != 0 {
				out[k] = v
			}
		}
		return out
	}
	return maps.Equal(norm(a.Added), norm(b.Added)) && maps.Equal(norm(a.Removed), norm(b.Removed)) &&
		maps.Equal(norm(a.Present), norm(b.Present))
}

// check compares every version number the repository ever used (and one
// beyond) with the model: content, summary, LatestVersion, next_version, and
// the membership row invariants.
func (m *model) check(t testing.TB, d *db.DB, when string) {
	t.Helper()
	ctx := context.Background()
	repo := must[db.Repository](t)(d.GetRepository(ctx, m.repo))
	if repo.NextVersion != m.next {
		t.Fatalf("%s: next_version = %d, want %d", when, repo.NextVersion, m.next)
	}
	if repo.LatestVersion != m.latest() {
		t.Fatalf("%s: repository latest version = %d, want %d", when, repo.LatestVersion, m.latest())
	}
	lv := must[db.RepositoryVersion](t)(d.LatestVersion(ctx, m.repo))
	if lv.Number != m.latest() || !lv.Complete {
		t.Fatalf("%s: LatestVersion = %d (complete %v), want %d", when, lv.Number, lv.Complete, m.latest())
	}
	for n := 0; n <= m.next+1; n++ {
		want, exists := m.versions[n]
		got := versionContent(t, d, m.repo, n)
		v, err := d.GetVersion(ctx, m.repo, n)
		if !exists {
			if !errors.Is(err, db.ErrNotFound) {
				t.Fatalf("%s: GetVersion(%d) = %d complete=%v err=%v, want not found", when, n, v.Number, v.Complete, err)
			}
			if len(got) != 0 {
				t.Fatalf("%s: version %d does not exist but lists %s", when, n, got.describe(m.names))
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: GetVersion(%d): %v", when, n, err)
		}
		if !got.equal(want) {
			t.Fatalf("%s: version %d holds %s, want %s", when, n, got.describe(m.names), want.describe(m.names))
		}
		if slow := slowVersionContent(t, d, m.repo, n); !slow.equal(want) {
			t.Fatalf("%s: version %d listed with a counted filter holds %s, want %s", when, n, slow.describe(m.names), want.describe(m.names))
		}
		if raw := sqlVersionContent(t, d, m.repo, n); !raw.equal(want) {
			t.Fatalf("%s: version %d membership rows hold %s, want %s", when, n, raw.describe(m.names), want.describe(m.names))
		}
		if ws := m.summaryOf(n); !summaryEqual(v.ContentSummary, ws) {
			t.Fatalf("%s: version %d summary %+v, want %+v", when, n, v.ContentSummary, ws)
		}
	}
	if m.building != nil {
		if got := sqlVersionContent(t, d, m.repo, *m.building); !got.equal(m.working) {
			t.Fatalf("%s: version %d being built holds %s, want %s", when, *m.building, got.describe(m.names), m.working.describe(m.names))
		}
	}
	checkRowInvariants(t, d, m.repo)
}
