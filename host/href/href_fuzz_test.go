package href

import (
	"strings"
	"testing"

	"github.com/google/uuid"
)

// FuzzParseCanonical checks what API handlers rely on when a client sends an href: an
// accepted href is exactly the canonical one its Ref rebuilds (one spelling per resource,
// so an href compared as text or stored as sent names the same object), and every
// accepted Ref has a non-nil id and names a flat kind or a typed master.
func FuzzParseCanonical(f *testing.F) {
	id := uuid.MustParse("01900000-0000-7000-8000-000000000001")
	for _, h := range []string{
		Flat(Artifacts, id), Flat(Tasks, id), Flat(Uploads, id),
		Typed(Repositories, "file", "file", id),
		Version(Typed(Repositories, "file", "file", id), 12),
		Typed(Content, "container", "manifests", id),
		Typed(Distributions, "container", "container", id),
		"/pulp/api/v3/artifacts/{01900000-0000-7000-8000-000000000001}/",
		"/pulp/api/v3/artifacts/urn:uuid:01900000-0000-7000-8000-000000000001/",
		"/pulp/api/v3/artifacts/019000000000700080000000000000001/",
		"/pulp/api/v3/artifacts/01900000-0000-7000-8000-00000000000A/",
		"/pulp/api/v3/repositories/file/file/01900000-0000-7000-8000-000000000001/versions/01/",
		"/pulp/api/v3//file/01900000-0000-7000-8000-000000000001/",
	} {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, h string) {
		r, err := Parse(h)
		if err != nil {
			if err.Error() == "" || !strings.Contains(err.Error(), "href") && !strings.Contains(err.Error(), "bad") {
				t.Fatalf("Parse(%q): error %q says nothing", h, err)
			}
			return
		}
		if got := r.String(); got != h {
			t.Fatalf("Parse(%q) accepted a non-canonical href; canonical is %q", h, got)
		}
		if r.ID == uuid.Nil && !strings.Contains(h, uuid.Nil.String()) {
			t.Fatalf("Parse(%q) = nil id", h)
		}
		if r.Master == "" || (r.Plugin == "") != (r.Endpoint == "") {
			t.Fatalf("Parse(%q) = %+v: incomplete", h, r)
		}
		if r.IsVersion() && r.Master != Repositories {
			t.Fatalf("Parse(%q) = %+v: version of a %s", h, r, r.Master)
		}
		again, err := Parse(r.String())
		if err != nil || again != r {
			t.Fatalf("Parse(%q) = %+v, reparsed %+v, %v", h, r, again, err)
		}
	})
}
