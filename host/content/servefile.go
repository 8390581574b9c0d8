package content

import (
	"net/http"

	"github.com/pulpo/pulpo/host/db"
)

// ServeFile answers a GET or HEAD for a file resolved elsewhere (the registry's blobs)
// as the content app answers its own paths: a stored artifact with http.ServeContent
// (Range, conditional requests), a missing one fetched from its remotes through the
// shared downloads (saved for on_demand). name gives the Content-Type by extension.
func (h *Handler) ServeFile(w http.ResponseWriter, r *http.Request, f db.ContentFile, name string) {
	if f.ArtifactID != nil {
		h.serveStored(w, r, f.File, f.SHA256, name)
		return
	}
	h.serveRemote(w, r, f, name)
}
