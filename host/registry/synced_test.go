package registry

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/db"
)

// syncedRepo stores what a sync with the on_demand policy leaves: a container.container
// repository whose version holds a manifest (stored), its tag, and a blob whose bytes are
// only at the remote; a distribution serves it at name.
func (e *env) syncedRepo(name, upstream string, blob, manifest []byte) uuid.UUID {
	e.t.Helper()
	ctx := e.ctx
	repo, err := e.db.CreateRepository(ctx, db.Repository{PulpType: "container.container", Name: name})
	if err != nil {
		e.t.Fatal(err)
	}
	remote, err := e.db.CreateRemote(ctx, db.Remote{PulpType: "container.container", Name: name, URL: upstream, Policy: "on_demand"})
	if err != nil {
		e.t.Fatal(err)
	}
	unit := func(typ string, fields map[string]string) db.Content {
		b, _ := json.Marshal(fields)
		key, err := db.NaturalKey(b, e.h.naturalKeys[typ])
		if err != nil {
			e.t.Fatal(err)
		}
		cs, err := e.db.GetOrCreateContents(ctx, []db.NewContent{{PulpType: typ, NaturalKey: key, Fields: b}})
		if err != nil {
			e.t.Fatal(err)
		}
		return cs[0]
	}
	bd, md := digestOf(blob), digestOf(manifest)
	b := unit("container.blob", map[string]string{"digest": bd})
	m := unit("container.manifest", map[string]string{"digest": md, "media_type": mediaOCIManifest})
	tag := unit("container.tag", map[string]string{"name": "latest", "digest": md})
	art, _, err := e.arts.Ingest(ctx, bytes.NewReader(manifest), int64(len(manifest)), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.db.AddContentArtifacts(ctx, []db.ContentArtifact{
		{ContentID: b.ID, RelativePath: bd}, {ContentID: m.ID, ArtifactID: &art.ID, RelativePath: md},
	}); err != nil {
		e.t.Fatal(err)
	}
	cas, err := e.db.ContentArtifactsOf(ctx, []uuid.UUID{b.ID})
	if err != nil {
		e.t.Fatal(err)
	}
	size := int64(len(blob))
	sum := sha256.Sum256(blob)
	if err := e.db.UpsertRemoteArtifacts(ctx, []db.RemoteArtifact{{ContentArtifactID: cas[0].ID, RemoteID: remote.ID,
		URL: upstream + "/v2/up/blobs/" + bd, Size: &size, Digests: map[string]string{"sha256": hex.EncodeToString(sum[:])}}}); err != nil {
		e.t.Fatal(err)
	}
	if err := e.db.AddRelations(ctx, []db.Relation{{From: tag.ID, Name: "tagged_manifest", To: m.ID}}); err != nil {
		e.t.Fatal(err)
	}
	v, err := e.db.NewVersion(ctx, repo.ID, nil, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.db.AddContent(ctx, repo.ID, v.Number, []uuid.UUID{b.ID, m.ID, tag.ID}); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.db.FinalizeVersion(ctx, repo.ID, v.Number); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.db.CreateDistribution(ctx, db.Distribution{PulpType: "container.container", Name: name, BasePath: name,
		RepositoryID: &repo.ID}); err != nil {
		e.t.Fatal(err)
	}
	return repo.ID
}

func TestPullSyncedOnDemand(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	blob := bytes.Repeat([]byte("on demand "), 5000)
	var hits atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write(blob)
	}))
	t.Cleanup(up.Close)
	manifest := image(digestOf([]byte("cfg")), digestOf(blob))
	e.syncedRepo("mirror/busybox", up.URL, blob, manifest)

	r := e.do("GET", "/v2/mirror/busybox/manifests/latest", nil)
	if r.status != http.StatusOK || !bytes.Equal(r.body, manifest) || r.header.Get("Content-Type") != mediaOCIManifest {
		t.Fatalf("manifest: %d %s", r.status, r.body)
	}
	r = e.do("GET", "/v2/mirror/busybox/blobs/"+digestOf(blob), nil)
	if r.status != http.StatusOK || !bytes.Equal(r.body, blob) || r.header.Get("Docker-Content-Digest") != digestOf(blob) {
		t.Fatalf("on-demand blob: %d %d bytes", r.status, len(r.body))
	}
	// Saved on the way: the next GET is served from storage.
	e.eventually("artifact saved", func() bool {
		return e.count(`SELECT count(*) FROM artifacts WHERE sha256 = $1`, digestOf(blob)[7:]) == 1
	})
	r = e.do("GET", "/v2/mirror/busybox/blobs/"+digestOf(blob), nil)
	if !bytes.Equal(r.body, blob) || hits.Load() != 1 {
		t.Errorf("second GET: %d bytes, %d upstream hits", len(r.body), hits.Load())
	}
	// A synced repository is read-only.
	e.expect(e.do("POST", "/v2/mirror/busybox/blobs/uploads/", nil), http.StatusForbidden, codeDenied)
	e.expect(e.do("PUT", "/v2/mirror/busybox/manifests/x", manifest, "Content-Type", mediaOCIManifest), http.StatusForbidden, codeDenied)
	e.expect(e.do("DELETE", "/v2/mirror/busybox/manifests/latest", nil), http.StatusForbidden, codeDenied)
	e.expect(e.do("DELETE", "/v2/mirror/busybox/blobs/"+digestOf(blob), nil), http.StatusForbidden, codeDenied)
	// A repository of another type holding the name refuses the first push too.
	if _, err := e.db.CreateRepository(e.ctx, db.Repository{PulpType: "container.container", Name: "taken"}); err != nil {
		t.Fatal(err)
	}
	e.expect(e.do("POST", "/v2/taken/blobs/uploads/?digest="+digestOf([]byte("b")), []byte("b")), http.StatusForbidden, codeDenied)
}

// A manifest GET by tag is answered from memory once resolved: rows changing behind the
// registry's back (no notification) do not show until a notification flushes.
func TestManifestByTagCached(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m, _ := e.pushImage("cached", "v1", "c")
	// The push's commits notify the cache asynchronously; one arriving after the
	// GET below would flush what it cached. Notifications come in commit order,
	// so once a later sentinel has flushed and nothing more follows, the push's
	// are all in.
	gen := func() uint64 { _, g, _ := e.h.cache.get(struct{}{}); return g }
	before := gen()
	if err := e.db.Notify(e.ctx, db.ChannelContentCache, "sentinel"); err != nil {
		t.Fatal(err)
	}
	e.eventually("notifications settled", func() bool {
		g := gen()
		time.Sleep(200 * time.Millisecond)
		return g > before && gen() == g
	})
	e.expect(e.do("GET", "/v2/cached/manifests/v1", nil), http.StatusOK, "")
	// Take the tag out of every version without a notification.
	if _, err := e.db.Pool().Exec(e.ctx, `DELETE FROM repository_content rc USING contents c
		WHERE c.id = rc.content_id AND c.pulp_type = 'container.tag'`); err != nil {
		t.Fatal(err)
	}
	r := e.do("GET", "/v2/cached/manifests/v1", nil)
	if r.status != http.StatusOK || !bytes.Equal(r.body, m) {
		t.Fatalf("cached GET: %d %s", r.status, r.body)
	}
	if err := e.db.Notify(e.ctx, db.ChannelContentCache, "test"); err != nil {
		t.Fatal(err)
	}
	e.eventually("flush", func() bool { return e.do("GET", "/v2/cached/manifests/v1", nil).status == http.StatusNotFound })
}
