package db_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/db"
)

// servedRepo is a repository whose version 1 holds one unit per path; paths
// listed in stored have an artifact, the others only a remote artifact.
type servedRepo struct {
	repo    db.Repository
	remote  db.Remote
	version db.RepositoryVersion
	cas     map[string]uuid.UUID // relative path -> content artifact
	arts    map[string]db.Artifact
}

func mkServedRepo(t *testing.T, d *db.DB, name string, paths []string, stored map[string]bool) servedRepo {
	t.Helper()
	ctx := context.Background()
	s := servedRepo{cas: map[string]uuid.UUID{}, arts: map[string]db.Artifact{}}
	s.remote = must[db.Remote](t)(d.CreateRemote(ctx, db.Remote{PulpType: "file.file", Name: name, URL: "http://up/", Policy: "on_demand"}))
	s.repo = mkRepo(t, d, name, nil)
	units := make([]db.NewContent, len(paths))
	for i, p := range paths {
		units[i] = db.NewContent{PulpType: "file.file", NaturalKey: name + ":" + p, Fields: json.RawMessage(fmt.Sprintf(`{"relative_path": %q}`, p))}
	}
	cs := must[[]db.Content](t)(d.GetOrCreateContents(ctx, units))
	var cas []db.ContentArtifact
	ids := make([]uuid.UUID, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
		ca := db.ContentArtifact{ContentID: c.ID, RelativePath: paths[i]}
		if stored[paths[i]] {
			sha := fmt.Sprintf("%064x", i+1) + ""
			sha = sha[len(sha)-64:]
			a := must[db.Artifact](t)(d.InsertArtifact(ctx, db.Artifact{File: "artifact/" + sha[:2] + "/" + sha[2:], Size: int64(100 + i), SHA256: sha}))
			s.arts[paths[i]] = a
			ca.ArtifactID = &a.ID
		}
		cas = append(cas, ca)
	}
	ok(t, d.AddContentArtifacts(ctx, cas))
	stored2 := must[[]db.ContentArtifact](t)(d.ContentArtifactsOf(ctx, ids))
	var ras []db.RemoteArtifact
	for _, ca := range stored2 {
		s.cas[ca.RelativePath] = ca.ID
		size := int64(7)
		ras = append(ras, db.RemoteArtifact{ContentArtifactID: ca.ID, RemoteID: s.remote.ID, URL: "http://up/" + ca.RelativePath,
			Size: &size, Digests: map[string]string{"sha256": strings.Repeat("e", 64)}})
	}
	ok(t, d.UpsertRemoteArtifacts(ctx, ras))
	v := must[db.RepositoryVersion](t)(d.NewVersion(ctx, s.repo.ID, nil, nil))
	ok(t, d.AddContent(ctx, s.repo.ID, v.Number, ids))
	s.version = *must[*db.RepositoryVersion](t)(d.FinalizeVersion(ctx, s.repo.ID, v.Number))
	return s
}

func TestResolveContentTarget(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	ctx := context.Background()
	s := mkServedRepo(t, d, "r", []string{"a.txt"}, nil)

	// A repository serves its latest version, or nothing from publications
	// while the latest version has no complete publication.
	tg := must[db.ContentTarget](t)(d.ResolveContentTarget(ctx, &s.repo.ID, nil, nil, false))
	if tg.VersionID != s.version.ID || tg.PublicationID != nil || tg.VersionNumber != 1 {
		t.Fatalf("repository target %+v", tg)
	}
	_, err := d.ResolveContentTarget(ctx, &s.repo.ID, nil, nil, true)
	wantErr(t, err, db.ErrNotFound)

	pub := must[db.Publication](t)(d.CreatePublication(ctx, "file.file", s.version.ID, nil, nil))
	_, err = d.ResolveContentTarget(ctx, &s.repo.ID, nil, nil, true)
	wantErr(t, err, db.ErrNotFound) // incomplete
	_, err = d.ResolveContentTarget(ctx, nil, nil, &pub.ID, true)
	wantErr(t, err, db.ErrNotFound)
	must[db.Publication](t)(d.CompletePublication(ctx, pub.ID, true))
	tg = must[db.ContentTarget](t)(d.ResolveContentTarget(ctx, &s.repo.ID, nil, nil, true))
	if tg.PublicationID == nil || *tg.PublicationID != pub.ID || !tg.PassThrough {
		t.Fatalf("publication target %+v", tg)
	}
	tg = must[db.ContentTarget](t)(d.ResolveContentTarget(ctx, nil, &s.version.ID, nil, true))
	if tg.PublicationID == nil || *tg.PublicationID != pub.ID {
		t.Fatalf("version target %+v", tg)
	}
	tg = must[db.ContentTarget](t)(d.ResolveContentTarget(ctx, nil, nil, &pub.ID, false))
	if tg.VersionID != s.version.ID || tg.RepositoryID != s.repo.ID {
		t.Fatalf("explicit publication target %+v", tg)
	}

	// A version being built is never served.
	v2 := must[db.RepositoryVersion](t)(d.NewVersion(ctx, s.repo.ID, nil, nil))
	tg = must[db.ContentTarget](t)(d.ResolveContentTarget(ctx, &s.repo.ID, nil, nil, false))
	if tg.VersionNumber != 1 {
		t.Fatalf("incomplete version %d served", v2.Number)
	}
	_, err = d.ResolveContentTarget(ctx, nil, &v2.ID, nil, false)
	wantErr(t, err, db.ErrNotFound)
	_, err = d.ResolveContentTarget(ctx, nil, nil, nil, false)
	wantErr(t, err, db.ErrNotFound)
}

func TestResolveContentPathAndList(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	ctx := context.Background()
	paths := []string{"a.txt", "dir/b.txt", "dir/sub/c.txt", "dir/sub/d.txt", "x", "x/y", "dir0.txt"}
	s := mkServedRepo(t, d, "r", paths, map[string]bool{"a.txt": true, "dir/b.txt": true})
	ver := must[db.ContentTarget](t)(d.ResolveContentTarget(ctx, &s.repo.ID, nil, nil, false))

	f, isDir, err := d.ResolveContentPath(ctx, ver, "a.txt")
	ok(t, err)
	if isDir || f.ArtifactID == nil || *f.ArtifactID != s.arts["a.txt"].ID || f.File != s.arts["a.txt"].File || f.Size != 100 {
		t.Fatalf("a.txt: %+v dir=%v", f, isDir)
	}
	f, _, err = d.ResolveContentPath(ctx, ver, "dir/sub/c.txt")
	ok(t, err)
	if f.ArtifactID != nil || f.ContentArtifactID == nil || *f.ContentArtifactID != s.cas["dir/sub/c.txt"] ||
		f.RemoteSize == nil || *f.RemoteSize != 7 || *f.RemoteSHA256 != strings.Repeat("e", 64) {
		t.Fatalf("on-demand file: %+v", f)
	}
	for _, p := range []string{"dir", "dir/sub"} {
		_, isDir, err = d.ResolveContentPath(ctx, ver, p)
		ok(t, err)
		if !isDir {
			t.Fatalf("%s is not a directory", p)
		}
	}
	f, isDir, err = d.ResolveContentPath(ctx, ver, "x") // a file and a directory: the file wins
	ok(t, err)
	if isDir || f.ContentArtifactID == nil || *f.ContentArtifactID != s.cas["x"] {
		t.Fatalf("x: %+v", f)
	}
	for _, p := range []string{"nope", "di", "dir/su", "DIR/b.txt", "dir/b.txt/"} {
		_, _, err = d.ResolveContentPath(ctx, ver, p)
		wantErr(t, err, db.ErrNotFound)
	}

	names := func(es []db.DirEntry) string {
		var out []string
		for _, e := range es {
			n := e.Name
			if e.Dir {
				n += "/"
			} else if e.Size != nil {
				n += fmt.Sprintf("(%d)", *e.Size)
			}
			out = append(out, n)
		}
		return strings.Join(out, " ")
	}
	for dir, want := range map[string]string{
		"":         "a.txt(100) dir/ dir0.txt(7) x/ x(7)",
		"dir/":     "b.txt(101) sub/",
		"dir/sub/": "c.txt(7) d.txt(7)",
		"nope/":    "",
	} {
		got := names(must[[]db.DirEntry](t)(d.ListContentDir(ctx, ver, dir)))
		if got != want {
			t.Fatalf("list %q = %q, want %q", dir, got, want)
		}
	}

	// A publication: metadata, a unit laid out elsewhere, and pass-through.
	meta := must[db.Artifact](t)(d.InsertArtifact(ctx, db.Artifact{File: "artifact/ff/" + strings.Repeat("f", 62), Size: 5, SHA256: strings.Repeat("f", 64)}))
	pub := must[db.Publication](t)(d.CreatePublication(ctx, "file.file", s.version.ID, nil, nil))
	other := s.cas["dir/b.txt"]
	ok(t, d.AddPublishedArtifacts(ctx, pub.ID, []db.PublishedArtifact{
		{RelativePath: "PULP_MANIFEST", ArtifactID: &meta.ID},
		{RelativePath: "pool/b.txt", ContentArtifactID: &other},
		{RelativePath: "a.txt", ArtifactID: &meta.ID}, // shadows the pass-through file
	}))
	must[db.Publication](t)(d.CompletePublication(ctx, pub.ID, false))
	tg := must[db.ContentTarget](t)(d.ResolveContentTarget(ctx, nil, nil, &pub.ID, false))

	f, _, err = d.ResolveContentPath(ctx, tg, "PULP_MANIFEST")
	ok(t, err)
	if f.ContentArtifactID != nil || f.ArtifactID == nil || *f.ArtifactID != meta.ID {
		t.Fatalf("metadata: %+v", f)
	}
	f, _, err = d.ResolveContentPath(ctx, tg, "pool/b.txt")
	ok(t, err)
	if f.ArtifactID == nil || *f.ArtifactID != s.arts["dir/b.txt"].ID || *f.ContentArtifactID != other {
		t.Fatalf("laid-out unit: %+v", f)
	}
	_, _, err = d.ResolveContentPath(ctx, tg, "dir/b.txt")
	wantErr(t, err, db.ErrNotFound) // no pass-through
	if got := names(must[[]db.DirEntry](t)(d.ListContentDir(ctx, tg, ""))); got != "PULP_MANIFEST(5) a.txt(5) pool/" {
		t.Fatalf("publication root: %q", got)
	}

	_, err = d.Pool().Exec(ctx, "UPDATE publications SET pass_through = true WHERE id = $1", pub.ID)
	ok(t, err)
	tg.PassThrough = true
	f, _, err = d.ResolveContentPath(ctx, tg, "a.txt")
	ok(t, err)
	if *f.ArtifactID != meta.ID {
		t.Fatalf("published path must win over pass-through: %+v", f)
	}
	f, _, err = d.ResolveContentPath(ctx, tg, "dir/b.txt")
	ok(t, err)
	if *f.ArtifactID != s.arts["dir/b.txt"].ID {
		t.Fatalf("pass-through: %+v", f)
	}
	if got := names(must[[]db.DirEntry](t)(d.ListContentDir(ctx, tg, ""))); got != "PULP_MANIFEST(5) a.txt(5) dir/ dir0.txt(7) pool/ x/ x(7)" {
		t.Fatalf("pass-through root: %q", got)
	}
}

func TestRemoteSourcesAndOnDemandSave(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	ctx := context.Background()
	s := mkServedRepo(t, d, "r", []string{"f.bin"}, nil)
	ca := s.cas["f.bin"]
	second := must[db.Remote](t)(d.CreateRemote(ctx, db.Remote{PulpType: "file.file", Name: "second", URL: "http://mirror/", Policy: "streamed"}))
	ok(t, d.UpsertRemoteArtifacts(ctx, []db.RemoteArtifact{{ContentArtifactID: ca, RemoteID: second.ID, URL: "http://mirror/f.bin",
		Digests: map[string]string{"sha256": strings.Repeat("e", 64), "sha512": strings.Repeat("5", 128)}}}))

	src := must[[]db.RemoteSource](t)(d.RemoteSources(ctx, ca, time.Minute))
	if len(src) != 2 || src[0].Remote.ID != s.remote.ID || src[1].Remote.Policy != "streamed" || src[1].Digests["sha512"] == "" || src[1].Size != nil {
		t.Fatalf("sources %+v", src)
	}
	// A failed source goes last while it cools down, and back after.
	ok(t, d.MarkRemoteArtifactFailed(ctx, src[0].ID))
	src = must[[]db.RemoteSource](t)(d.RemoteSources(ctx, ca, time.Minute))
	if src[0].Remote.ID != second.ID || src[1].FailedAt == nil {
		t.Fatalf("after failure %+v", src)
	}
	src = must[[]db.RemoteSource](t)(d.RemoteSources(ctx, ca, 0))
	if src[0].Remote.ID != s.remote.ID {
		t.Fatalf("after cooldown %+v", src)
	}

	sha := strings.Repeat("a", 64)
	a := must[db.Artifact](t)(d.InsertArtifact(ctx, db.Artifact{File: "artifact/aa/" + sha[2:], Size: 7, SHA256: sha}))
	ok(t, d.SetContentArtifactFile(ctx, ca, a.ID))
	tg := must[db.ContentTarget](t)(d.ResolveContentTarget(ctx, &s.repo.ID, nil, nil, false))
	f, _, err := d.ResolveContentPath(ctx, tg, "f.bin")
	ok(t, err)
	if f.ArtifactID == nil || *f.ArtifactID != a.ID || f.RemoteSize != nil {
		t.Fatalf("after save %+v", f)
	}
	// A second save keeps the first artifact.
	sha2 := strings.Repeat("b", 64)
	b := must[db.Artifact](t)(d.InsertArtifact(ctx, db.Artifact{File: "artifact/bb/" + sha2[2:], Size: 7, SHA256: sha2}))
	ok(t, d.SetContentArtifactFile(ctx, ca, b.ID))
	f, _, _ = d.ResolveContentPath(ctx, tg, "f.bin")
	if *f.ArtifactID != a.ID {
		t.Fatalf("artifact replaced: %+v", f)
	}
}

func TestContentDistributions(t *testing.T) {
	t.Parallel()
	d := newDB(t)
	ctx := context.Background()
	g := must[db.ContentGuard](t)(d.CreateContentGuard(ctx, db.ContentGuard{PulpType: "core.header", Name: "g",
		Fields: json.RawMessage(`{"header_name": "x-key", "header_value": "v"}`)}))
	repo := mkRepo(t, d, "r", nil)
	must[db.Distribution](t)(d.CreateDistribution(ctx, db.Distribution{PulpType: "file.file", Name: "a", BasePath: "a/b", RepositoryID: &repo.ID, ContentGuardID: &g.ID}))
	must[db.Distribution](t)(d.CreateDistribution(ctx, db.Distribution{PulpType: "file.file", Name: "h", BasePath: "h", Hidden: true}))
	list := must[[]db.ContentDistribution](t)(d.ContentDistributions(ctx))
	if len(list) != 2 {
		t.Fatalf("%d distributions", len(list))
	}
	for _, x := range list {
		switch x.BasePath {
		case "a/b":
			if x.Guard == nil || x.Guard.PulpType != "core.header" || !strings.Contains(string(x.Guard.Fields), "x-key") || *x.RepositoryID != repo.ID {
				t.Fatalf("guarded %+v", x)
			}
		case "h":
			if !x.Hidden || x.Guard != nil || x.RepositoryID != nil {
				t.Fatalf("hidden %+v", x)
			}
		}
	}
}
