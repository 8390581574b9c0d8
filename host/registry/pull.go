package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/pulpo/pulpo/host/db"
)

// maxCachedManifest bounds the manifest bodies kept in memory: a GET by tag then costs no
// query and no storage read.
const maxCachedManifest = 256 << 10

// manifest is a resolved manifest.
type manifest struct {
	digest    string
	mediaType string
	file      db.ContentFile
	body      []byte // nil: read from storage
	subject   string
}

func (m *manifest) size() int64 {
	if m.file.ArtifactID != nil {
		return m.file.Size
	}
	if m.file.RemoteSize != nil {
		return *m.file.RemoteSize
	}
	return -1
}

// cache keys
type (
	manifestByTag struct {
		s   db.RegistryScope
		tag string
	}
	manifestByDigest struct {
		s      db.RegistryScope
		digest string
	}
	blobByDigest struct {
		s      db.RegistryScope
		digest string
	}
)

// manifestFields are the fields of the manifest type the registry reads.
type manifestFields struct {
	Digest       string            `json:"digest"`
	MediaType    string            `json:"media_type"`
	ArtifactType string            `json:"artifact_type"`
	Subject      string            `json:"subject"`
	Annotations  map[string]string `json:"annotations"`
}

// toManifest reads a found unit, and its body when it is stored and small.
func (h *Handler) toManifest(ctx context.Context, u db.RegistryUnit) (*manifest, error) {
	var f manifestFields
	if err := json.Unmarshal(u.Fields, &f); err != nil {
		return nil, fmt.Errorf("manifest %s fields: %w", u.ContentID, err)
	}
	m := &manifest{digest: f.Digest, mediaType: f.MediaType, file: u.File, subject: f.Subject}
	if u.File.ArtifactID != nil && u.File.Size <= maxCachedManifest {
		rd, err := h.d.Storage.Open(ctx, u.File.File)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", f.Digest, err)
		}
		defer rd.Close()
		if m.body, err = io.ReadAll(io.LimitReader(rd, u.File.Size+1)); err != nil {
			return nil, fmt.Errorf("manifest %s: %w", f.Digest, err)
		}
		if int64(len(m.body)) != u.File.Size {
			return nil, fmt.Errorf("manifest %s: stored file has %d bytes, want %d", f.Digest, len(m.body), u.File.Size)
		}
	}
	return m, nil
}

// keepStored caches what will not change but by a notification: an on-demand artifact
// arriving changes nothing that notifies.
func keepStored(m *manifest) bool { return m != nil && m.file.ArtifactID != nil }

// findManifest resolves a tag or digest in scope; nil when absent.
func (h *Handler) findManifest(ctx context.Context, s db.RegistryScope, ref string) (*manifest, error) {
	if isDigest(ref) {
		return load(ctx, h.cache, manifestByDigest{s, ref}, func(ctx context.Context) (*manifest, error) {
			key, err := h.digestKey(h.roles.ManifestType, ref)
			if err != nil {
				return nil, err
			}
			u, err := h.d.DB.RegistryUnitByKey(ctx, s, h.roles.ManifestType, key)
			if errors.Is(err, db.ErrNotFound) {
				return nil, nil
			}
			if err != nil {
				return nil, err
			}
			return h.toManifest(ctx, u)
		}, keepStored)
	}
	return load(ctx, h.cache, manifestByTag{s, ref}, func(ctx context.Context) (*manifest, error) {
		u, _, err := h.d.DB.RegistryTag(ctx, s, h.roles.TagType, h.tagRel, ref)
		if errors.Is(err, db.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return h.toManifest(ctx, u)
	}, keepStored)
}

func checkRef(ref string) *apiError {
	if isDigest(ref) {
		return checkDigest(ref)
	}
	return checkTag(ref)
}

// getManifest answers GET and HEAD of a manifest by tag or digest with its stored bytes.
func (h *Handler) getManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	if e := checkRef(rt.ref); e != nil {
		return e
	}
	m, err := h.lookupManifest(r, rt)
	if missing(m, err) || err == nil && !isDigest(rt.ref) && h.staleCache(r.Context(), rt.name) {
		// Behind a pull-through distribution: fetched from the upstream (a tag held
		// longer than PullThroughTTL asked again), then looked up again. What the
		// cache holds is served when the upstream cannot say better.
		synced, perr := h.pullThrough(r, rt.name, rt.ref)
		if perr != nil && m == nil {
			return perr
		}
		if synced {
			if fresh, ferr := h.lookupManifest(r, rt); ferr != nil || fresh != nil || m == nil {
				m, err = fresh, ferr
			}
		}
	}
	if err != nil {
		return err
	}
	if m == nil {
		return errorf(http.StatusNotFound, codeManifestUnknown, "manifest unknown", map[string]string{"name": rt.name, "reference": rt.ref})
	}
	// By tag, a client listing manifest media types that exclude this one gets none, as
	// Pulp answers (no conversion); by digest the bytes are what was asked for.
	if !isDigest(rt.ref) && !accepts(r.Header.Values("Accept"), m.mediaType) {
		return errorf(http.StatusNotFound, codeManifestUnknown, "manifest of media type "+m.mediaType+" is not acceptable",
			map[string]string{"name": rt.name, "reference": rt.ref, "media_type": m.mediaType})
	}
	hdr := w.Header()
	hdr.Set("Docker-Content-Digest", m.digest)
	hdr.Set("ETag", `"`+m.digest+`"`)
	if m.body == nil {
		// Large or not downloaded: served from storage or its remote.
		h.d.Files.ServeFile(&typedWriter{ResponseWriter: w, contentType: m.mediaType}, r, m.file, "manifest")
		return nil
	}
	hdr.Set("Content-Type", m.mediaType)
	hdr.Set("Content-Length", strconv.Itoa(len(m.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(m.body) //nolint:errcheck // the client left
	}
	return nil
}

// lookupManifest resolves the name (pull access) and finds ref there: nil
// when the name serves no such manifest.
func (h *Handler) lookupManifest(r *http.Request, rt route) (*manifest, error) {
	_, s, err := h.resolve(r, rt.name, ActionPull)
	if err != nil {
		return nil, err
	}
	return h.findManifest(r.Context(), s, rt.ref)
}

// missing reports a manifest lookup that found no name or no manifest,
// which a pull-through may fill.
func missing(m *manifest, err error) bool {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Code == codeNameUnknown
	}
	return err == nil && m == nil
}

// typedWriter forces a Content-Type on a response another handler writes.
type typedWriter struct {
	http.ResponseWriter
	contentType string
}

func (t *typedWriter) WriteHeader(code int) {
	if code < 300 {
		t.Header().Set("Content-Type", t.contentType)
	}
	t.ResponseWriter.WriteHeader(code)
}

func (t *typedWriter) Write(b []byte) (int, error) { return t.ResponseWriter.Write(b) }

// manifestMediaTypes are the types Accept lists are judged by: a list naming only other
// manifest types excludes the stored one; any other value (*/*, application/json) does not.
var manifestMediaTypes = map[string]bool{ //nolint:gochecknoglobals // read-only
	"application/vnd.oci.image.manifest.v1+json":                true,
	"application/vnd.oci.image.index.v1+json":                   true,
	"application/vnd.docker.distribution.manifest.v2+json":      true,
	"application/vnd.docker.distribution.manifest.list.v2+json": true,
	"application/vnd.docker.distribution.manifest.v1+json":      true,
	"application/vnd.docker.distribution.manifest.v1+prettyjws": true,
}

func accepts(values []string, mediaType string) bool {
	listed := false
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			if mt == mediaType || !manifestMediaTypes[mt] {
				return true
			}
			listed = true
		}
	}
	return !listed
}

// getBlob answers GET and HEAD of a blob: stored ones with Range and conditional
// requests, on-demand ones fetched from their remote.
func (h *Handler) getBlob(w http.ResponseWriter, r *http.Request, rt route) error {
	if e := checkDigest(rt.ref); e != nil {
		return e
	}
	_, s, err := h.resolve(r, rt.name, ActionPull)
	if err != nil {
		return err
	}
	f, err := h.findBlob(r.Context(), s, rt.ref)
	if err != nil {
		return err
	}
	if f == nil {
		return errorf(http.StatusNotFound, codeBlobUnknown, "blob unknown to registry", map[string]string{"digest": rt.ref})
	}
	w.Header().Set("Docker-Content-Digest", rt.ref)
	h.d.Files.ServeFile(&rangeWriter{ResponseWriter: w, r: r}, r, *f, "blob")
	return nil
}

// rangeWriter turns an unsatisfiable range into the OCI error body.
type rangeWriter struct {
	http.ResponseWriter
	r       *http.Request
	swallow bool
}

func (rw *rangeWriter) WriteHeader(code int) {
	if code == http.StatusRequestedRangeNotSatisfiable {
		rw.swallow = true
		writeError(rw.ResponseWriter, rw.r, errorf(code, codeRangeInvalid, "requested range not satisfiable", nil))
		return
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *rangeWriter) Write(b []byte) (int, error) {
	if rw.swallow {
		return len(b), nil
	}
	return rw.ResponseWriter.Write(b)
}

// ReadFrom keeps sendfile for stored blobs.
func (rw *rangeWriter) ReadFrom(src io.Reader) (int64, error) {
	if rw.swallow {
		return io.Copy(io.Discard, src)
	}
	if rf, ok := rw.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(rw.ResponseWriter, src)
}

// Unwrap lets http.ResponseController reach the connection.
func (rw *rangeWriter) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

func (h *Handler) findBlob(ctx context.Context, s db.RegistryScope, digest string) (*db.ContentFile, error) {
	return load(ctx, h.cache, blobByDigest{s, digest}, func(ctx context.Context) (*db.ContentFile, error) {
		key, err := h.digestKey(h.roles.BlobType, digest)
		if err != nil {
			return nil, err
		}
		u, err := h.d.DB.RegistryUnitByKey(ctx, s, h.roles.BlobType, key)
		if errors.Is(err, db.ErrNotFound) || err == nil && u.File.ContentArtifactID == nil {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return &u.File, nil
	}, func(f *db.ContentFile) bool { return f != nil && f.ArtifactID != nil })
}

// page reads n and last: n < 0 when absent.
func page(r *http.Request) (int, string, error) {
	q := r.URL.Query()
	n := -1
	if v := q.Get("n"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 0 {
			return 0, "", errorf(http.StatusBadRequest, codeUnsupported, "n must be a non-negative integer", map[string]string{"n": v})
		}
	}
	return n, q.Get("last"), nil
}

// writePage sends a list with a Link to the next page when the page is full.
func writePage(w http.ResponseWriter, r *http.Request, path string, n int, items []string, body any) error {
	if n > 0 && len(items) == n {
		q := url.Values{"n": {strconv.Itoa(n)}, "last": {items[len(items)-1]}}
		w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, path, q.Encode()))
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(b) //nolint:errcheck
	}
	return nil
}

// tagsList answers GET /v2/<name>/tags/list with n/last pagination.
func (h *Handler) tagsList(w http.ResponseWriter, r *http.Request, rt route) error {
	n, last, err := page(r)
	if err != nil {
		return err
	}
	_, s, err := h.resolve(r, rt.name, ActionPull)
	if err != nil {
		return err
	}
	tags := []string{}
	if n != 0 {
		if tags, err = h.d.DB.RegistryTagNames(r.Context(), s, h.roles.TagType, last, n); err != nil {
			return err
		}
	}
	if tags == nil {
		tags = []string{}
	}
	return writePage(w, r, r.URL.Path, n, tags, map[string]any{"name": rt.name, "tags": tags})
}

// catalog answers GET /v2/_catalog with n/last pagination: the distributions' base paths.
func (h *Handler) catalog(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return errorf(http.StatusMethodNotAllowed, codeUnsupported, "method "+r.Method+" is not supported here", nil)
	}
	n, last, err := page(r)
	if err != nil {
		return err
	}
	if err := h.access.Allow(r, AccessRequest{Action: ActionCatalog}); err != nil {
		return err
	}
	t, err := h.dists(r.Context())
	if err != nil {
		return err
	}
	i, _ := slices.BinarySearch(t.names, last)
	if i < len(t.names) && t.names[i] == last {
		i++
	}
	names := []string{}
	for ; i < len(t.names) && (n < 0 || len(names) < n); i++ {
		d := t.byName[t.names[i]]
		if h.access.Allow(r, AccessRequest{Name: d.BasePath, Action: ActionPull, Exists: true, Private: d.Private}) == nil {
			names = append(names, d.BasePath)
		}
	}
	return writePage(w, r, r.URL.Path, n, names, map[string]any{"repositories": names})
}

// descriptor is an OCI content descriptor.
type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

const mediaOCIIndex = "application/vnd.oci.image.index.v1+json"

// referrer describes a manifest as the referrers API lists it, from its bytes: its
// artifactType, else its config's media type, and its annotations.
func (h *Handler) referrer(ctx context.Context, u db.RegistryUnit) (descriptor, error) {
	var f manifestFields
	if err := json.Unmarshal(u.Fields, &f); err != nil {
		return descriptor{}, fmt.Errorf("manifest %s fields: %w", u.ContentID, err)
	}
	m, err := h.toManifest(ctx, u)
	if err != nil {
		return descriptor{}, err
	}
	d := descriptor{MediaType: f.MediaType, Digest: f.Digest, Size: m.size(), ArtifactType: f.ArtifactType, Annotations: f.Annotations}
	if m.body != nil {
		var raw struct {
			ArtifactType string            `json:"artifactType"`
			Annotations  map[string]string `json:"annotations"`
			Config       *struct {
				MediaType string `json:"mediaType"`
			} `json:"config"`
		}
		if err := json.Unmarshal(m.body, &raw); err == nil {
			d.ArtifactType, d.Annotations = raw.ArtifactType, raw.Annotations
			if d.ArtifactType == "" && raw.Config != nil {
				d.ArtifactType = raw.Config.MediaType
			}
		}
	}
	return d, nil
}

// referrers answers GET /v2/<name>/referrers/<digest>: an OCI index of the manifests whose
// subject is the digest, filtered by artifactType.
func (h *Handler) referrers(w http.ResponseWriter, r *http.Request, rt route) error {
	if e := checkDigest(rt.ref); e != nil {
		return e
	}
	index := struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Manifests     []descriptor `json:"manifests"`
	}{2, mediaOCIIndex, []descriptor{}}
	filter := r.URL.Query().Get("artifactType")
	// A name nothing is pushed to yet has no referrers: the spec answers an empty index
	// for any subject.
	_, s, err := h.resolve(r, rt.name, ActionPull)
	var ae *apiError
	if err != nil && !(errors.As(err, &ae) && ae.Code == codeNameUnknown) {
		return err
	}
	if err == nil {
		units, err := h.d.DB.RegistryReferrers(r.Context(), s, h.roles.ManifestType, rt.ref)
		if err != nil {
			return err
		}
		for _, u := range units {
			d, err := h.referrer(r.Context(), u)
			if err != nil {
				return err
			}
			if filter == "" || d.ArtifactType == filter {
				index.Manifests = append(index.Manifests, d)
			}
		}
	}
	if filter != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	b, err := json.Marshal(index)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", mediaOCIIndex)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(b) //nolint:errcheck
	}
	return nil
}
