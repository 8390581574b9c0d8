package artifact_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/pulpo/pulpo/host/artifact"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/db/dbtest"
	"github.com/pulpo/pulpo/host/digest"
	"github.com/pulpo/pulpo/host/storage"
	"github.com/pulpo/pulpo/host/storage/fs"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// plainDriver hides the fs driver's optional capabilities.
type plainDriver struct{ storage.Driver }

// TestStageAndCommitStaged stages files, the same bytes twice among them,
// through drivers with and without BatchAdopter, and records them at once.
func TestStageAndCommitStaged(t *testing.T) {
	t.Parallel()
	d := db.New(dbtest.NewPool(t), nil)
	for name, wrap := range map[string]func(*fs.FS) storage.Driver{
		"batch": func(f *fs.FS) storage.Driver { return f },
		"plain": func(f *fs.FS) storage.Driver { return plainDriver{f} },
	} {
		t.Run(name, func(t *testing.T) {
			store, err := fs.New(filepath.Join(t.TempDir(), "media"))
			if err != nil {
				t.Fatal(err)
			}
			work := t.TempDir()
			s := &artifact.Store{DB: d, Storage: wrap(store), TempDir: work, Checksums: digest.DefaultAllowed}
			bodies := [][]byte{[]byte(name + " one"), []byte(name + " two"), []byte(name + " one")}
			var staged []artifact.Staged
			for _, body := range bodies {
				sp, err := s.Spool(t.Context(), bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				st, err := s.Stage(t.Context(), sp)
				if err != nil {
					t.Fatalf("Stage: %v", err)
				}
				if st.Size != int64(len(body)) || st.Digests["sha384"] == "" {
					t.Errorf("staged %+v", st)
				}
				staged = append(staged, st)
			}
			if left, _ := os.ReadDir(work); len(left) != 0 {
				t.Errorf("%d files left in the working directory", len(left))
			}
			arts, err := s.CommitStaged(t.Context(), staged)
			if err != nil {
				t.Fatalf("CommitStaged: %v", err)
			}
			if len(arts) != 3 || arts[0].ID != arts[2].ID || arts[0].ID == arts[1].ID {
				t.Fatalf("rows %+v: want one per distinct sha256, in order", arts)
			}
			for i, a := range arts {
				if a.SHA256 != staged[i].Digests["sha256"] || a.File != staged[i].Key || *a.SHA512 != staged[i].Digests["sha512"] {
					t.Errorf("row %d = %+v, staged %+v", i, a, staged[i])
				}
				r, err := store.Open(t.Context(), a.File)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(r)
				r.Close()
				if !bytes.Equal(got, bodies[i]) {
					t.Errorf("%s holds %q, want %q", a.File, got, bodies[i])
				}
			}
			if none, err := s.CommitStaged(t.Context(), nil); err != nil || none != nil {
				t.Errorf("CommitStaged of nothing: %v, %v", none, err)
			}
		})
	}
}
