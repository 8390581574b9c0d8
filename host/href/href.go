// Package href builds and parses Pulp-style resource paths. Every pulp_href
// the API returns comes from here, and every href a client sends is parsed
// here:
//
//	/pulp/api/v3/
//	├── artifacts/<id>/
//	├── uploads/<id>/
//	├── tasks/<id>/ , task-groups/<id>/ , workers/<id>/
//	├── content/<plugin>/<endpoint>/<id>/
//	├── remotes/<plugin>/<endpoint>/<id>/
//	└── repositories/<plugin>/<endpoint>/<id>/
//	    └── versions/<number>/
package href

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// APIRoot is the prefix of every API path.
const APIRoot = "/pulp/api/v3/"

// Flat resources live directly under the API root.
const (
	Artifacts  = "artifacts"
	Uploads    = "uploads"
	Tasks      = "tasks"
	TaskGroups = "task-groups"
	Workers    = "workers"
)

// Typed resources live under <master>/<plugin>/<endpoint>/.
const (
	Content       = "content"
	Remotes       = "remotes"
	Repositories  = "repositories"
	Publications  = "publications"
	Distributions = "distributions"
	ContentGuards = "contentguards"
)

// Flat is the href of a flat resource, e.g. Flat(Artifacts, id).
func Flat(kind string, id uuid.UUID) string {
	return APIRoot + kind + "/" + id.String() + "/"
}

// Typed is the href of a typed resource, e.g. Typed(Repositories, "file", "file", id).
func Typed(master, plugin, endpoint string, id uuid.UUID) string {
	return APIRoot + master + "/" + plugin + "/" + endpoint + "/" + id.String() + "/"
}

// Version is the href of a repository version.
func Version(repoHref string, number int) string {
	return repoHref + "versions/" + strconv.Itoa(number) + "/"
}

// Ref is a parsed href.
type Ref struct {
	Master   string // a flat kind, or a typed master such as "repositories"
	Plugin   string // typed resources only
	Endpoint string // typed resources only
	ID       uuid.UUID
	Version  int // repository versions only; -1 otherwise
}

// IsVersion tells whether the href named a repository version.
func (r Ref) IsVersion() bool { return r.Version >= 0 }

// String rebuilds the canonical href.
func (r Ref) String() string {
	var h string
	if r.Plugin == "" {
		h = Flat(r.Master, r.ID)
	} else {
		h = Typed(r.Master, r.Plugin, r.Endpoint, r.ID)
	}
	if r.IsVersion() {
		h = Version(h, r.Version)
	}
	return h
}

// Parse reads an href of any resource this package builds.
func Parse(h string) (Ref, error) {
	rest, ok := strings.CutPrefix(h, APIRoot)
	if !ok || !strings.HasSuffix(rest, "/") {
		return Ref{}, fmt.Errorf("%q is not a Pulp href (want %s.../)", h, APIRoot)
	}
	parts := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	r := Ref{Version: -1}
	switch {
	case len(parts) == 2:
		r.Master = parts[0]
	case len(parts) == 4:
		r.Master, r.Plugin, r.Endpoint = parts[0], parts[1], parts[2]
	case len(parts) == 6 && parts[0] == Repositories && parts[4] == "versions":
		r.Master, r.Plugin, r.Endpoint = parts[0], parts[1], parts[2]
		n, err := strconv.Atoi(parts[5])
		if err != nil || n < 0 || strconv.Itoa(n) != parts[5] {
			return Ref{}, fmt.Errorf("%q: bad version number", h)
		}
		r.Version = n
	default:
		return Ref{}, fmt.Errorf("%q is not a Pulp href", h)
	}
	// Only the canonical lowercase hyphenated form: uuid.Parse also takes braces, a urn:
	// prefix, bare hex and upper case, which would give one resource many hrefs.
	idText := parts[len(parts)-1-2*btoi(r.IsVersion())]
	id, err := uuid.Parse(idText)
	if err != nil || id.String() != idText || strings.Contains(h, "//") {
		return Ref{}, fmt.Errorf("%q: bad id", h)
	}
	r.ID = id
	return r, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
