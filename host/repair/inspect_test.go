package repair

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/storage"
	"github.com/pulpo/pulpo/host/storage/fs"
)

// brokenStat is a storage whose Stat fails as an unreachable bucket would.
type brokenStat struct{ storage.Driver }

func (brokenStat) Stat(context.Context, string) (storage.Info, error) {
	return storage.Info{}, errors.New("connection refused")
}

func TestInspect(t *testing.T) {
	ctx := t.Context()
	d, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("the artifact's bytes\n")
	sum := sha256.Sum256(body)
	sha := hex.EncodeToString(sum[:])
	key, _ := storage.ArtifactKey(sha)
	art := db.Artifact{File: key, Size: int64(len(body)), SHA256: sha}
	s := &Service{Storage: d}

	check := func(name string, verify bool, want string) {
		t.Helper()
		got, err := s.inspect(ctx, art, verify)
		if err != nil || !strings.HasPrefix(got, want) || (want == "" && got != "") {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	check("absent", true, "missing")
	put := func(b []byte) {
		if _, err := d.Put(ctx, key, strings.NewReader(string(b))); err != nil {
			t.Fatal(err)
		}
	}
	put(body)
	check("good", true, "")
	check("good, no checksums", false, "")
	put(body[:5])
	check("short", false, "size 5")
	flipped := append([]byte{body[0] ^ 1}, body[1:]...)
	put(flipped)
	check("same size, other bytes, no checksums", false, "")
	check("same size, other bytes", true, "sha256 ")

	// A storage that cannot answer is an error, never "missing": repair
	// must not go fetching every artifact during an outage.
	s.Storage = brokenStat{d}
	if got, err := s.inspect(ctx, art, true); err == nil || got != "" {
		t.Fatalf("outage: %q, %v", got, err)
	}
}
