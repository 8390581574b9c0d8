package content

import (
	"slices"
	"strings"

	"github.com/pulpo/pulpo/host/db"
)

// dist is a distribution ready to serve.
type dist struct {
	db.ContentDistribution
	fromPublication bool
	guard           guard // nil: open
}

// distTable holds every distribution, so matching a request costs no query.
type distTable struct {
	byPath  map[string]*dist
	visible []string // base paths of the non-hidden distributions, sorted
}

func newDistTable(rows []db.ContentDistribution, fromPublication map[string]bool, downloads DownloadChecker) *distTable {
	t := &distTable{byPath: make(map[string]*dist, len(rows))}
	for _, r := range rows {
		d := &dist{ContentDistribution: r, fromPublication: fromPublication[r.PulpType]}
		if r.Guard != nil {
			d.guard = parseGuardWith(*r.Guard, downloads)
		}
		t.byPath[r.BasePath] = d
		if !r.Hidden {
			t.visible = append(t.visible, r.BasePath)
		}
	}
	slices.Sort(t.visible)
	return t
}

// match finds the distribution whose base path is the longest prefix of rel
// at a segment boundary. sub is the rest of rel: "" when rel is the base path
// itself, else it starts with "/".
func (t *distTable) match(rel string) (d *dist, sub string) {
	p := strings.TrimSuffix(rel, "/")
	for {
		if d := t.byPath[p]; d != nil {
			return d, rel[len(p):]
		}
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			return nil, ""
		}
		p = p[:i]
	}
}

// children lists the next segments of the visible base paths under dir (""
// or ending in "/"), sorted; every one is a directory to a client.
func (t *distTable) children(dir string) []string {
	var out []string
	i, _ := slices.BinarySearch(t.visible, dir)
	for ; i < len(t.visible) && strings.HasPrefix(t.visible[i], dir); i++ {
		seg, _, _ := strings.Cut(t.visible[i][len(dir):], "/")
		if seg != "" {
			out = append(out, seg)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
