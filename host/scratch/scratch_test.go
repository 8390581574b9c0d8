package scratch

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestSweepSparesTheLivingAndRemovesTheDead(t *testing.T) {
	root := t.TempDir()
	live, err := Claim(root)
	if err != nil {
		t.Fatal(err)
	}
	dead, err := Claim(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []*Dir{live, dead} {
		if err := os.WriteFile(filepath.Join(d.Path, "download-1"), []byte("half"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A process killed with -9: its lock is dropped by the kernel, its files stay.
	dead.lock.Close()
	// Loose files of older versions: an old one goes, a fresh one (maybe a download in
	// progress of a process that predates Claim) stays.
	old := filepath.Join(root, "download-old")
	fresh := filepath.Join(root, "download-fresh")
	for _, p := range []string{old, fresh} {
		os.WriteFile(p, nil, 0o644)
	}
	os.Chtimes(old, time.Now().Add(-48*time.Hour), time.Now().Add(-48*time.Hour))

	removed, err := Sweep(root)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	want := []string{old, dead.Path}
	slices.Sort(want)
	if !slices.Equal(removed, want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	for _, p := range []string{dead.Path, dead.Path + ".lock", old} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s survives the sweep: %v", p, err)
		}
	}
	for _, p := range []string{filepath.Join(live.Path, "download-1"), live.Path + ".lock", fresh} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
	// A second sweep finds nothing; Release leaves nothing of the live one.
	if removed, err := Sweep(root); err != nil || len(removed) != 0 {
		t.Fatalf("second sweep: %v %v", removed, err)
	}
	if err := live.Release(); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 1 || entries[0].Name() != "download-fresh" {
		t.Fatalf("after release: %v", entries)
	}
}

// TestSweepOrphanDir: a directory whose lock file is gone (its owner died releasing it).
func TestSweepOrphanDir(t *testing.T) {
	root := t.TempDir()
	orphan := filepath.Join(root, "proc-123")
	os.Mkdir(orphan, 0o755)
	if removed, err := Sweep(root); err != nil || len(removed) != 1 || removed[0] != orphan {
		t.Fatalf("removed %v, %v", removed, err)
	}
}
