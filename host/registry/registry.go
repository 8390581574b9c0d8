package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/host/artifact"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/href"
	"github.com/pulpo/pulpo/host/plugin"
	"github.com/pulpo/pulpo/host/storage"
	"github.com/pulpo/pulpo/host/tasks"
)

// FileServer sends a resolved blob: a stored artifact, or one fetched from its remote
// (on_demand, streamed). The content app implements it.
type FileServer interface {
	ServeFile(w http.ResponseWriter, r *http.Request, f db.ContentFile, name string)
}

// Uploader reads a pushed manifest as a unit: the plugin's content_from_upload.
type Uploader interface {
	ContentFromUpload(ctx context.Context, req abi.UploadRequest, body []byte, sha256 string, host plugin.RouteHost) (abi.DeclarativeContent, error)
}

// Dispatcher runs a task under its resources' locks; repository versions are only ever
// made by tasks holding the repository's exclusive lock.
type Dispatcher interface {
	Dispatch(ctx context.Context, s tasks.Spec) (db.Task, error)
	WaitTask(ctx context.Context, id uuid.UUID) (db.Task, error)
}

// Deps is what the registry needs.
type Deps struct {
	DB        *db.DB
	Storage   storage.Driver
	Artifacts *artifact.Store
	Files     FileServer
	// Plugin and Describe are the plugin whose route declared the protocol, and Route
	// that route (its Registry roles name the types).
	Plugin   Uploader
	Describe abi.Describe
	Route    abi.Route
	Tasks    Dispatcher
	// Access decides who may do what; nil allows everything (OpenAccess).
	Access Access
	// UploadDir holds the partial files of upload sessions; every process serving the
	// registry must see the same directory.
	UploadDir string
	// CacheTTL bounds how long a resolution is trusted without a notification (15 s).
	CacheTTL time.Duration
	// UploadExpiry ends upload sessions untouched for this long, with their bytes
	// (default 24 h, distribution's purge age is a week).
	UploadExpiry time.Duration
	// PullThroughTTL is how long a tag a pull-through cache holds is served
	// before a pull of it asks the upstream again (default 5 min).
	PullThroughTTL time.Duration
	Logger         *slog.Logger
}

// Handler serves the OCI distribution API under Route.Prefix. Start its cache listener
// with Start; Close stops it.
type Handler struct {
	d      Deps
	prefix string
	roles  abi.RegistryRoles
	// tagRel is the tag type's relation to the manifest type; natural keys and repository
	// keys are the describe's.
	tagRel       string
	naturalKeys  map[string][]string
	repoKeys     map[string][]string
	pushTypes    []string // content types of the push repository type
	pushRepoHref func(uuid.UUID) string
	access       Access
	cache        *caches
	// refreshed is when this process last synced each pull-through cache
	// (repository id -> time.Time).
	refreshed sync.Map
	log       *slog.Logger

	stop    context.CancelFunc
	base    context.Context
	running sync.WaitGroup
}

// New builds the registry for a route declaring abi.ProtocolOCIDistribution.
func New(d Deps) (*Handler, error) {
	if d.DB == nil || d.Storage == nil || d.Artifacts == nil || d.Files == nil || d.Tasks == nil {
		return nil, errors.New("registry: DB, Storage, Artifacts, Files and Tasks are required")
	}
	if d.Route.Protocol != abi.ProtocolOCIDistribution || d.Route.Registry == nil {
		return nil, fmt.Errorf("registry: route %s does not declare the %s protocol", d.Route.Prefix, abi.ProtocolOCIDistribution)
	}
	if d.UploadDir == "" {
		return nil, errors.New("registry: UploadDir is required")
	}
	if err := os.MkdirAll(d.UploadDir, 0o755); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	if d.CacheTTL <= 0 {
		d.CacheTTL = 15 * time.Second
	}
	if d.UploadExpiry <= 0 {
		d.UploadExpiry = 24 * time.Hour
	}
	if d.PullThroughTTL <= 0 {
		d.PullThroughTTL = 5 * time.Minute
	}
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{d: d, prefix: d.Route.Prefix, roles: *d.Route.Registry, access: d.Access, cache: newCaches(d.CacheTTL),
		naturalKeys: map[string][]string{}, repoKeys: map[string][]string{}, log: log.With("component", "registry")}
	if h.access == nil {
		h.access = OpenAccess{}
	}
	for _, ct := range d.Describe.ContentTypes {
		h.naturalKeys[ct.Name] = ct.NaturalKey
		keys := ct.RepoKey
		if len(keys) == 0 {
			keys = ct.NaturalKey
		}
		h.repoKeys[ct.Name] = keys
		if ct.Name == h.roles.TagType {
			for _, r := range ct.Relations {
				if r.To == h.roles.ManifestType && !r.Many {
					h.tagRel = r.Name
				}
			}
		}
	}
	if h.tagRel == "" {
		return nil, fmt.Errorf("registry: tag type %s has no relation to %s", h.roles.TagType, h.roles.ManifestType)
	}
	for _, rt := range d.Describe.RepositoryTypes {
		if rt.Name == h.roles.PushRepositoryType {
			h.pushTypes = rt.ContentTypes
		}
	}
	// The same href the REST API locks a repository by, so pushes and API tasks exclude
	// each other.
	pl, endpoint, _ := strings.Cut(h.roles.PushRepositoryType, ".")
	h.pushRepoHref = func(id uuid.UUID) string { return href.Typed(href.Repositories, pl, endpoint, id) }
	h.base, h.stop = context.WithCancel(context.Background())
	return h, nil
}

// Start listens for cache invalidations and expires abandoned upload sessions until
// Close.
func (h *Handler) Start() {
	h.running.Go(func() {
		if err := h.cache.listen(h.base, h.d.DB); err != nil && h.base.Err() == nil {
			h.log.Error("registry cache listener stopped", "err", err)
		}
	})
	h.running.Go(func() {
		tick := time.NewTicker(min(h.d.UploadExpiry/4, time.Hour))
		defer tick.Stop()
		for {
			h.expireUploads(h.base)
			select {
			case <-h.base.Done():
				return
			case <-tick.C:
			}
		}
	})
}

// expireUploads ends sessions untouched for UploadExpiry, and removes monolithic upload
// files a crash left behind. Every process may run it: a session is deleted once.
func (h *Handler) expireUploads(ctx context.Context) {
	before := time.Now().Add(-h.d.UploadExpiry)
	ids, err := h.d.DB.DeleteStaleRegistryUploads(ctx, before)
	if err != nil {
		if ctx.Err() == nil {
			h.log.Warn("expire upload sessions", "err", err)
		}
		return
	}
	for _, id := range ids {
		os.Remove(h.uploadPath(id))
	}
	leftovers, _ := filepath.Glob(filepath.Join(h.d.UploadDir, "monolithic-*"))
	for _, p := range leftovers {
		if fi, err := os.Stat(p); err == nil && fi.ModTime().Before(before) {
			os.Remove(p)
		}
	}
	if len(ids) > 0 {
		h.log.Info("upload sessions expired", "count", len(ids))
	}
}

// Close stops the listener.
func (h *Handler) Close() {
	h.stop()
	h.running.Wait()
}

// ServeHTTP routes a request under the prefix.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	rest, ok := strings.CutPrefix(r.URL.Path, h.prefix)
	if !ok {
		writeError(w, r, errorf(http.StatusNotFound, codeNameUnknown, "not a registry path", nil))
		return
	}
	var err error
	switch {
	case rest == "":
		err = h.root(w, r)
	case rest == "_catalog":
		err = h.catalog(w, r)
	default:
		rt, ok := parsePath(rest)
		if !ok {
			err = errorf(http.StatusNotFound, codeNameUnknown, "unknown registry endpoint", map[string]string{"path": r.URL.Path})
			break
		}
		if e := checkName(rt.name); e != nil {
			err = e
			break
		}
		err = h.dispatch(w, r, rt)
	}
	if err != nil {
		h.fail(w, r, err)
	}
}

func (h *Handler) dispatch(w http.ResponseWriter, r *http.Request, rt route) error {
	m := r.Method
	switch rt.kind {
	case kindManifest:
		switch m {
		case http.MethodGet, http.MethodHead:
			return h.getManifest(w, r, rt)
		case http.MethodPut:
			return h.putManifest(w, r, rt)
		case http.MethodDelete:
			return h.deleteManifest(w, r, rt)
		}
	case kindBlob:
		switch m {
		case http.MethodGet, http.MethodHead:
			return h.getBlob(w, r, rt)
		case http.MethodDelete:
			return h.deleteBlob(w, r, rt)
		}
	case kindUpload:
		switch {
		case m == http.MethodPost && rt.ref == "":
			return h.startUpload(w, r, rt)
		case rt.ref == "":
		case m == http.MethodPatch:
			return h.patchUpload(w, r, rt)
		case m == http.MethodPut:
			return h.finishUpload(w, r, rt)
		case m == http.MethodGet || m == http.MethodHead:
			return h.uploadStatus(w, r, rt)
		case m == http.MethodDelete:
			return h.cancelUpload(w, r, rt)
		}
	case kindTags:
		if m == http.MethodGet || m == http.MethodHead {
			return h.tagsList(w, r, rt)
		}
	case kindReferrers:
		if m == http.MethodGet || m == http.MethodHead {
			return h.referrers(w, r, rt)
		}
	}
	return errorf(http.StatusMethodNotAllowed, codeUnsupported, "method "+m+" is not supported here", nil)
}

// fail answers an error: an *apiError as it says, an access refusal as 401/403, anything
// else as a logged 500, unless the client left.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		writeError(w, r, ae)
	case errors.Is(err, ErrUnauthorized):
		if ch := (*Challenge)(nil); errors.As(err, &ch) {
			w.Header().Set("WWW-Authenticate", ch.Header)
		}
		writeError(w, r, errorf(http.StatusUnauthorized, codeUnauthorized, "authentication required", nil))
	case errors.Is(err, ErrDenied):
		writeError(w, r, errorf(http.StatusForbidden, codeDenied, err.Error(), nil))
	case r.Context().Err() != nil:
	default:
		h.log.ErrorContext(r.Context(), "registry request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, r, errorf(http.StatusInternalServerError, "UNKNOWN", "internal error", nil))
	}
}

// root answers GET /v2/: the API version check clients start with.
func (h *Handler) root(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return errorf(http.StatusMethodNotAllowed, codeUnsupported, "method "+r.Method+" is not supported here", nil)
	}
	if err := h.access.Allow(r, AccessRequest{Action: ActionLogin}); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write([]byte("{}")) //nolint:errcheck
	}
	return nil
}

// dist is a distribution the registry serves names from.
type dist struct {
	db.RegistryDistribution
}

// scope is what the distribution serves; ok is false when it serves nothing.
func (h *Handler) scope(d *dist) (db.RegistryScope, bool) {
	if d.RepositoryID == nil {
		return db.RegistryScope{}, false
	}
	return db.RegistryScope{Repository: *d.RepositoryID, Number: d.Number,
		Pending: d.VersionID == nil && d.RepositoryType == h.roles.PushRepositoryType}, true
}

type distTable struct {
	byName map[string]*dist
	names  []string // sorted
}

type distsKey struct{}

func (h *Handler) dists(ctx context.Context) (*distTable, error) {
	return load(ctx, h.cache, distsKey{}, func(ctx context.Context) (*distTable, error) {
		rows, err := h.d.DB.RegistryDistributions(ctx, h.roles.DistributionType)
		if err != nil {
			return nil, fmt.Errorf("load distributions: %w", err)
		}
		t := &distTable{byName: make(map[string]*dist, len(rows))}
		for _, row := range rows {
			t.byName[row.BasePath] = &dist{row}
			t.names = append(t.names, row.BasePath)
		}
		slices.Sort(t.names)
		return t, nil
	}, nil)
}

// resolve finds what a name serves and checks the client may do action there.
func (h *Handler) resolve(r *http.Request, name string, action Action) (*dist, db.RegistryScope, error) {
	t, err := h.dists(r.Context())
	if err != nil {
		return nil, db.RegistryScope{}, err
	}
	d := t.byName[name]
	req := AccessRequest{Name: name, Action: action, Exists: d != nil}
	if d != nil {
		req.Private = d.Private
	}
	if err := h.access.Allow(r, req); err != nil {
		return nil, db.RegistryScope{}, err
	}
	if d == nil {
		return nil, db.RegistryScope{}, errorf(http.StatusNotFound, codeNameUnknown, "repository name not known to registry", map[string]string{"name": name})
	}
	s, ok := h.scope(d)
	if !ok {
		return nil, db.RegistryScope{}, errorf(http.StatusNotFound, codeNameUnknown, "repository serves no content", map[string]string{"name": name})
	}
	return d, s, nil
}

// naturalKey is the stored natural key of a digest-named unit of pulpType.
func (h *Handler) naturalKey(pulpType string, fields map[string]string) (string, error) {
	b, err := json.Marshal(fields)
	if err != nil {
		return "", err
	}
	return db.NaturalKey(b, h.naturalKeys[pulpType])
}

func (h *Handler) digestKey(pulpType, digest string) (string, error) {
	return h.naturalKey(pulpType, map[string]string{"digest": digest})
}

// uploadPath is where a session's bytes are written.
func (h *Handler) uploadPath(id uuid.UUID) string {
	return filepath.Join(h.d.UploadDir, id.String())
}
