package href

import (
	"testing"

	"github.com/google/uuid"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	id := uuid.MustParse("01900000-0000-7000-8000-000000000001")
	for _, h := range []string{
		Flat(Artifacts, id),
		Typed(Repositories, "file", "file", id),
		Version(Typed(Repositories, "file", "file", id), 12),
		Typed(Content, "container", "manifests", id),
	} {
		r, err := Parse(h)
		if err != nil {
			t.Fatalf("Parse(%q): %v", h, err)
		}
		if r.String() != h || r.ID != id {
			t.Fatalf("Parse(%q) = %+v, rebuilds %q", h, r, r.String())
		}
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	for _, h := range []string{
		"", "/pulp/api/v3/", "/pulp/api/v3/artifacts/nope/", "/pulp/api/v3/artifacts/01900000-0000-7000-8000-000000000001",
		"/pulp/api/v2/artifacts/01900000-0000-7000-8000-000000000001/",
		"/pulp/api/v3/repositories/file/file/01900000-0000-7000-8000-000000000001/versions/-1/",
		"/pulp/api/v3/repositories/file/file/01900000-0000-7000-8000-000000000001/versions/01/",
		"/pulp/api/v3/repositories/file/file/01900000-0000-7000-8000-000000000001/other/1/",
		"/pulp/api/v3/a/b/c/d/e/f/g/",
	} {
		if r, err := Parse(h); err == nil {
			t.Errorf("Parse(%q) = %+v, want error", h, r)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("/pulp/api/v3/repositories/file/file/01900000-0000-7000-8000-000000000001/versions/3/")
	f.Add("/pulp/api/v3/artifacts/01900000-0000-7000-8000-000000000001/")
	f.Fuzz(func(t *testing.T, h string) {
		r, err := Parse(h)
		if err != nil {
			return
		}
		if _, err := Parse(r.String()); err != nil {
			t.Fatalf("canonical form of %q does not parse: %v", h, err)
		}
	})
}
