package content

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pulpo/pulpo/host/artifact"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/download"
	"github.com/pulpo/pulpo/host/storage"
)

// Deps is what the content app needs; everything but the durations is
// required.
type Deps struct {
	DB      *db.DB
	Storage storage.Driver
	// Artifacts saves on-demand downloads; its TempDir holds the growing
	// download files, so a save is a rename into storage.
	Artifacts *artifact.Store
	// Downloader builds the downloader of a remote from its settings; one is
	// kept per remote until the remote changes. It should compute the
	// allowed checksums (download.WithChecksums): a saved artifact records
	// those of them the download computed.
	Downloader func(db.Remote) (*download.Downloader, error)
	// ServeFromPublication maps a distribution pulp_type to whether it
	// serves publications (a plugin's describe) rather than version content.
	ServeFromPublication map[string]bool
	// Prefix is the URL path served, e.g. /pulp/content/.
	Prefix string
	// CacheTTL bounds how long a resolution is trusted without a
	// notification (default 15 s).
	CacheTTL time.Duration
	// FailureCooldown is how long a remote artifact whose bytes failed
	// verification is tried only after the others (default 5 min, Pulp's
	// REMOTE_CONTENT_FETCH_FAILURE_COOLDOWN).
	FailureCooldown time.Duration
	// Redirect, when set, answers a GET of a stored artifact with a 302 to
	// the URL it returns for the artifact's storage key: a short-lived
	// presigned URL of the object store, whose responses carry contentType
	// and disposition. The client then fetches the bytes, Range included,
	// from the store. Content guards are checked before; HEAD is answered
	// here as without it.
	Redirect func(ctx context.Context, key, contentType, disposition string) (string, error)
	Logger   *slog.Logger
	// Downloads decides core.rbac content guards; nil denies them.
	Downloads DownloadChecker
}

// Handler serves the content app. Start its cache listener with Start and
// stop it, with every download in flight, with Close.
type Handler struct {
	prefix   string
	storage  storage.Driver
	resolver *resolver
	fetcher  *fetcher
	redirect func(ctx context.Context, key, contentType, disposition string) (string, error)
	log      *slog.Logger

	stop    context.CancelFunc
	base    context.Context
	running sync.WaitGroup

	sending atomic.Int64 // stored files being sent, for sender
}

// New builds the content app.
func New(d Deps) (*Handler, error) {
	if d.DB == nil || d.Storage == nil || d.Artifacts == nil || d.Downloader == nil {
		return nil, errors.New("content: DB, Storage, Artifacts and Downloader are required")
	}
	if !strings.HasPrefix(d.Prefix, "/") || !strings.HasSuffix(d.Prefix, "/") {
		return nil, fmt.Errorf("content: prefix %q must start and end with a slash", d.Prefix)
	}
	if d.CacheTTL <= 0 {
		d.CacheTTL = 15 * time.Second
	}
	if d.FailureCooldown <= 0 {
		d.FailureCooldown = 5 * time.Minute
	}
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "content")
	base, stop := context.WithCancel(context.Background())
	h := &Handler{prefix: d.Prefix, storage: d.Storage, redirect: d.Redirect, log: log, base: base, stop: stop,
		resolver: newResolver(d.DB, d.ServeFromPublication, d.CacheTTL, log)}
	h.resolver.downloads = d.Downloads
	h.fetcher = newFetcher(base, d, log, h.resolver.paths.flush)
	return h, nil
}

// Start listens for cache invalidations until Close.
func (h *Handler) Start() {
	h.running.Go(func() { h.resolver.listen(h.base) })
}

// Close stops the listener and every download in flight (their partial
// files are removed) and waits for them.
func (h *Handler) Close() {
	h.stop()
	h.fetcher.wait()
	h.running.Wait()
}

// ServeHTTP serves GET and HEAD under the prefix.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpError(w, http.StatusMethodNotAllowed, "Method not allowed.")
		return
	}
	rel, err := relativePath(r, h.prefix)
	if err != nil {
		httpError(w, http.StatusBadRequest, "Invalid path.")
		return
	}
	ctx := r.Context()
	table, err := h.resolver.distributions(ctx)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	d, sub := table.match(rel)
	if d == nil {
		h.serveDistributions(w, r, table, rel)
		return
	}
	if d.guard != nil {
		if err := d.guard.permit(r); err != nil {
			h.log.DebugContext(ctx, "content guard denied", "path", r.URL.Path, "err", err)
			httpError(w, http.StatusForbidden, "Access to the requested content is forbidden.")
			return
		}
	}
	if sub == "" {
		redirectToDir(w, r)
		return
	}
	sub = sub[1:]
	t, err := h.resolver.target(ctx, d)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !t.ok {
		httpError(w, http.StatusNotFound, fmt.Sprintf("Distribution %q serves nothing: it has no complete publication or repository version.", d.BasePath))
		return
	}
	if sub == "" || strings.HasSuffix(sub, "/") {
		h.serveDir(w, r, t, sub)
		return
	}
	res, err := h.resolver.path(ctx, t, sub)
	switch {
	case err != nil:
		h.fail(w, r, err)
	case res.isDir:
		redirectToDir(w, r)
	case !res.found:
		notFound(w, r)
	case res.file.ArtifactID != nil:
		h.serveStored(w, r, res.file.File, res.file.SHA256, sub)
	default:
		h.serveRemote(w, r, res.file, sub)
	}
}

// serveDistributions lists the base paths under rel when no distribution
// matches it.
func (h *Handler) serveDistributions(w http.ResponseWriter, r *http.Request, table *distTable, rel string) {
	if rel != "" && !strings.HasSuffix(rel, "/") {
		if len(table.children(rel+"/")) > 0 {
			redirectToDir(w, r)
			return
		}
		notFound(w, r)
		return
	}
	names := table.children(rel)
	if rel != "" && len(names) == 0 {
		notFound(w, r)
		return
	}
	entries := make([]db.DirEntry, len(names))
	for i, n := range names {
		entries[i] = db.DirEntry{Name: n, Dir: true}
	}
	writeListing(w, r, entries, rel != "")
}

// serveDir serves dir's index.html when there is one, else its listing.
func (h *Handler) serveDir(w http.ResponseWriter, r *http.Request, t target, dir string) {
	ctx := r.Context()
	idx, err := h.resolver.path(ctx, t, dir+"index.html")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if idx.found {
		if idx.file.ArtifactID != nil {
			h.serveStored(w, r, idx.file.File, idx.file.SHA256, "index.html")
		} else {
			h.serveRemote(w, r, idx.file, "index.html")
		}
		return
	}
	entries, err := h.resolver.list(ctx, t, dir)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if dir != "" && len(entries) == 0 {
		notFound(w, r)
		return
	}
	writeListing(w, r, entries, true)
}

// fail answers an unexpected error: 500, logged, unless the client left.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return
	}
	h.log.ErrorContext(r.Context(), "content request failed", "path", r.URL.Path, "err", err)
	httpError(w, http.StatusInternalServerError, "Internal error.")
}

func httpError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Del("Content-Length")
	h.Del("ETag")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	fmt.Fprintf(w, "%d: %s\n", status, msg)
}

func notFound(w http.ResponseWriter, r *http.Request) {
	httpError(w, http.StatusNotFound, fmt.Sprintf("%s not found.", r.URL.Path))
}

// redirectToDir adds the trailing slash a directory needs, keeping the
// query (a signed URL's token).
func redirectToDir(w http.ResponseWriter, r *http.Request) {
	loc := r.URL.EscapedPath() + "/"
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	http.Redirect(w, r, loc, http.StatusMovedPermanently)
}
