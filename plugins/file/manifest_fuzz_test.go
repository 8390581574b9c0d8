package main

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/pulpo/pulpo/abi"
)

// FuzzManifestTree checks the whole-manifest promises of ManifestReader that a repository
// version depends on (FuzzParseManifest checks each line): among accepted entries every
// relative path is clean and listed once, and no path is a directory of another, so
// the files can be published side by side; an error names a line of the input.
func FuzzManifestTree(f *testing.F) {
	for _, s := range []string{
		"a," + sumA + ",1\na/b," + sumB + ",2\n",
		"a/b," + sumA + ",1\na," + sumB + ",2\n",
		"a/b/c," + sumA + ",1\na/b/d," + sumB + ",2\na/e," + sumC + ",3\na/b," + sumA + ",1\n",
		"x," + sumA + ",1\nx," + sumA + ",1\nx," + sumA + ",2\n",
		"d/1," + sumA + ",1\nd/2," + sumA + ",1\ne/1," + sumA + ",1\nd/3," + sumA + ",1\nd," + sumA + ",1\n",
		"\xef\xbb\xbfa," + sumA + ",1\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, manifest string) {
		r := NewManifestReader(strings.NewReader(manifest))
		files := map[string]bool{}
		for {
			e, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				var me *ManifestError
				if !errors.As(err, &me) || me.Line < 1 || me.Reason == "" {
					t.Fatalf("error %v does not name a line", err)
				}
				break
			}
			if !abi.CleanRelativePath(e.RelativePath) {
				t.Fatalf("accepted unclean path %q", e.RelativePath)
			}
			if files[e.RelativePath] {
				t.Fatalf("path %q returned twice", e.RelativePath)
			}
			files[e.RelativePath] = true
		}
		for p := range files {
			for i := range len(p) {
				if p[i] == '/' && files[p[:i]] {
					t.Fatalf("%q is both a file and the directory of %q", p[:i], p)
				}
			}
		}
		if r.Duplicates() < 0 || r.Line() > strings.Count(manifest, "\n")+1 {
			t.Fatalf("counted %d lines of a %d-line manifest", r.Line(), strings.Count(manifest, "\n")+1)
		}
	})
}
