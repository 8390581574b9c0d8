package pluginhost_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/db/dbtest"
	"github.com/pulpo/pulpo/host/pluginhost"
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
