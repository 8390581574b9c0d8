package db

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// sqlSkeleton is what a WHERE clause built from repoList may contain once its fixed
// column expressions are taken out: placeholders, the fixed operators, parentheses and
// white space. Any other text would be client input spliced into SQL.
var sqlSkeleton = regexp.MustCompile(`^(\s|\(|\)|\$[0-9]+|WHERE|AND|NOT|IS|DISTINCT|FROM|NULL|ILIKE|LIKE|ANY|lower|->>|\?|=|<=|>=|<|>|,|COL)*$`)

// FuzzWhere builds the WHERE clause of a list query from client-controlled filter values
// (text lookups, pulp_label_select) and checks that client text reaches the database only
// as bound parameters, and that an error is ErrBadFilter.
func FuzzWhere(f *testing.F) {
	for _, s := range []struct{ op, val, labels string }{
		{"", "name", "a=1,b!=2,c~x,d,!e"}, {"contains", "100%_\\", "k=v=w"}, {"startswith", "'; DROP TABLE x;--", "!"},
		{"icontains", "", ","}, {"iexact", "$1", " a = b , !c "}, {"in", "x", "a~"}, {"bogus", "x", "=x"},
		{"gt", "1", "'=\")"}, {"isnull", "", "a!=,"},
	} {
		f.Add(s.op, s.val, s.labels)
	}
	cols := make([]string, 0, len(repoList.columns)+1)
	for _, c := range repoList.columns {
		cols = append(cols, c)
	}
	cols = append(cols, "r.pulp_labels")
	f.Fuzz(func(t *testing.T, op, val, labels string) {
		filters := []Filter{
			{Field: "name", Op: op, Value: val},
			{Field: "pulp_label_select", Value: labels},
		}
		sql, args, err := repoList.where(filters, nil)
		if err != nil {
			if !errors.Is(err, ErrBadFilter) {
				t.Fatalf("where(%q, %q, %q): %v is not ErrBadFilter", op, val, labels, err)
			}
			return
		}
		skeleton := sql
		for _, c := range cols {
			skeleton = strings.ReplaceAll(skeleton, c, "COL")
		}
		if !sqlSkeleton.MatchString(skeleton) {
			t.Fatalf("where(%q, %q, %q) = %q: client text in SQL", op, val, labels, sql)
		}
		if n := strings.Count(sql, "$"); n != len(args) {
			t.Fatalf("where(%q, %q, %q) = %q with %d args", op, val, labels, sql, len(args))
		}
	})
}
