package pluginhost_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/db/dbtest"
	"github.com/pulpo/pulpo/host/pluginhost"
	"github.com/pulpo/pulpo/host/storage"
	"github.com/pulpo/pulpo/host/storage/fs"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// content_lookup results carry each unit's artifacts (spec 9.2, Content).
func TestLookupCarriesArtifacts(t *testing.T) {
	ctx := context.Background()
	d := db.New(dbtest.NewPool(t), nil)
	sha := strings.Repeat("ab", 32)
	art, err := d.InsertArtifact(ctx, db.Artifact{File: "artifact/ab/cd", Size: 42, SHA256: sha})
	if err != nil {
		t.Fatal(err)
	}
	nk := []string{"relative_path", "digest"}
	var news []db.NewContent
	for _, f := range []string{`{"relative_path":"a.txt","digest":"` + sha + `"}`, `{"relative_path":"b.txt","digest":"00"}`} {
		key, err := db.NaturalKey(json.RawMessage(f), nk)
		if err != nil {
			t.Fatal(err)
		}
		news = append(news, db.NewContent{PulpType: "file.file", NaturalKey: key, Fields: json.RawMessage(f)})
	}
	units, err := d.GetOrCreateContents(ctx, news)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.AddContentArtifacts(ctx, []db.ContentArtifact{{ContentID: units[0].ID, ArtifactID: &art.ID, RelativePath: "a.txt"}}); err != nil {
		t.Fatal(err)
	}
	h := &pluginhost.Version{DB: d, NaturalKeys: map[string][]string{"file.file": nk}}
	got, err := h.Lookup(ctx, abi.LookupRequest{Type: "file.file", Scope: abi.ScopeAll, Keys: []json.RawMessage{
		json.RawMessage(`{"relative_path":"a.txt","digest":"` + sha + `"}`), json.RawMessage(`{"relative_path":"b.txt","digest":"00"}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("lookup found %d units, want 2", len(got))
	}
	byPath := map[string]abi.Content{}
	for _, c := range got {
		var f struct {
			RelativePath string `json:"relative_path"`
		}
		if err := json.Unmarshal(c.Fields, &f); err != nil {
			t.Fatal(err)
		}
		byPath[f.RelativePath] = c
	}
	want := abi.ContentArtifact{RelativePath: "a.txt", SHA256: sha, Size: 42, Downloaded: true}
	if a := byPath["a.txt"].Artifacts; len(a) != 1 || a[0] != want {
		t.Errorf("a.txt artifacts = %+v, want [%+v]", a, want)
	}
	if a := byPath["b.txt"].Artifacts; len(a) != 0 {
		t.Errorf("b.txt artifacts = %+v, want none", a)
	}
}

// artifact_read (ABI 1.1): bounded reads of stored bytes; not_found without bytes.
func TestReadArtifact(t *testing.T) {
	ctx := context.Background()
	d := db.New(dbtest.NewPool(t), nil)
	store, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"architecture":"arm64","os":"linux"}`)
	sum := sha256.Sum256(body)
	sha := hex.EncodeToString(sum[:])
	key, err := storage.ArtifactKey(sha)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Put(ctx, key, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.InsertArtifact(ctx, db.Artifact{File: key, Size: int64(len(body)), SHA256: sha}); err != nil {
		t.Fatal(err)
	}
	// A row whose bytes are gone from storage.
	lost := strings.Repeat("cd", 32)
	if _, err := d.InsertArtifact(ctx, db.Artifact{File: "artifact/cd/" + lost[2:], Size: 3, SHA256: lost}); err != nil {
		t.Fatal(err)
	}
	a := pluginhost.Artifacts{DB: d, Storage: store}
	size := int64(len(body))
	for _, tt := range []struct {
		name           string
		sha            string
		offset, length int64
		want           string
		code           string
	}{
		{"whole", sha, 0, abi.MaxArtifactReadBytes, string(body), ""},
		{"middle", sha, 2, 12, string(body[2:14]), ""},
		{"tail shorter than asked", sha, size - 3, 100, string(body[size-3:]), ""},
		{"at the end", sha, size, 10, "", ""},
		{"past the end", sha, size + 1, 10, "", abi.CodeInvalidInput},
		{"not stored (on demand)", strings.Repeat("ef", 32), 0, 10, "", abi.CodeNotFound},
		{"bytes lost", lost, 0, 10, "", abi.CodeNotFound},
	} {
		got, gotSize, err := a.ReadArtifact(ctx, tt.sha, tt.offset, tt.length)
		if tt.code != "" {
			if !errors.Is(err, abi.NewError(tt.code, "")) {
				t.Errorf("%s: err = %v, want code %s", tt.name, err, tt.code)
			}
			continue
		}
		if err != nil || string(got) != tt.want || gotSize != size {
			t.Errorf("%s: %q, %d, %v; want %q, %d", tt.name, got, gotSize, err, tt.want, size)
		}
	}
}
