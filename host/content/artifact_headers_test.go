package content

import (
	"net/http"
	"testing"

	"github.com/pulpo/pulpo/host/db"
)

// An on-demand fetch sends the headers the plugin declared with the artifact
// (a registry answers a manifest GET without a matching Accept with a 404).
func TestOnDemandSendsArtifactHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := []byte(`{"schemaVersion":2}`)
	const accept = "application/vnd.oci.image.manifest.v1+json"
	e.up.set("/manifest", route{serve: func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") != accept {
			http.NotFound(w, r)
			return
		}
		w.Write(body)
	}})
	rm := e.remote("on_demand")
	cas := e.lazyDist("h", file{path: "manifest", body: body, remotes: []*db.Remote{rm}})
	size := int64(len(body))
	if err := e.db.UpsertRemoteArtifacts(e.ctx, []db.RemoteArtifact{{ContentArtifactID: cas["manifest"], RemoteID: rm.ID,
		URL: rm.URL + "manifest", Size: &size, Digests: map[string]string{"sha256": sum(body)},
		Headers: map[string]string{"accept": accept}}}); err != nil {
		t.Fatal(err)
	}
	e.want("/pulp/content/h/manifest", 200, string(body))
}
