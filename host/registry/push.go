package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/host/coretask"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/pluginhost"
	"github.com/pulpo/pulpo/host/tasks"
)

// maxManifestBytes is the largest manifest accepted, as distribution and the OCI spec
// recommend (4 MiB).
const maxManifestBytes = 4 << 20

// pushRepo returns the push repository behind name for action, creating it and its
// distribution on the first push when create is set. Names served by anything but a push
// repository's latest version are read-only.
func (h *Handler) pushRepo(r *http.Request, name string, action Action, create bool) (uuid.UUID, error) {
	ctx := r.Context()
	if h.roles.PushRepositoryType == "" {
		return uuid.Nil, errorf(http.StatusMethodNotAllowed, codeUnsupported, "this registry does not accept pushes", nil)
	}
	t, err := h.dists(ctx)
	if err != nil {
		return uuid.Nil, err
	}
	d := t.byName[name]
	req := AccessRequest{Name: name, Action: action, Exists: d != nil}
	if d != nil {
		req.Private = d.Private
	}
	if err := h.access.Allow(r, req); err != nil {
		return uuid.Nil, err
	}
	readOnly := errorf(http.StatusForbidden, codeDenied, "repository is read-only: it is not served from a push repository",
		map[string]string{"name": name})
	if d != nil {
		if d.VersionID != nil || d.RepositoryID == nil || d.RepositoryType != h.roles.PushRepositoryType {
			return uuid.Nil, readOnly
		}
		return *d.RepositoryID, nil
	}
	if _, ok := h.pullThroughOf(t, name); ok {
		return uuid.Nil, readOnly // the upstream's namespace
	}
	if !create {
		return uuid.Nil, errorf(http.StatusNotFound, codeNameUnknown, "repository name not known to registry", map[string]string{"name": name})
	}
	id, err := h.d.DB.EnsurePushRepository(ctx, name, h.roles.PushRepositoryType, h.roles.DistributionType)
	if errors.Is(err, db.ErrWrongType) {
		return uuid.Nil, readOnly
	}
	if err != nil {
		return uuid.Nil, fmt.Errorf("push repository %s: %w", name, err)
	}
	h.cache.flush() // the new distribution
	h.log.InfoContext(ctx, "push repository ready", "name", name, "repository", id)
	return id, nil
}

// modify makes a new version of a push repository adding and removing content, through
// the core.modify task under the repository's exclusive lock (run at once when the lock
// is free, else by a worker), and waits for it: the version exists when this returns.
// Added content leaves the pending set.
func (h *Handler) modify(ctx context.Context, repo uuid.UUID, add, remove []uuid.UUID) error {
	repoHref := h.pushRepoHref(repo)
	args := coretask.ModifyArgs{Repository: repo, RepoHref: repoHref, Add: add, Remove: remove, ContentTypes: h.pushTypes,
		RepoKeys: map[string][]string{h.roles.TagType: h.repoKeys[h.roles.TagType]}}
	t, err := h.d.Tasks.Dispatch(ctx, tasks.Spec{Name: coretask.Modify, Args: args, Exclusive: []string{repoHref}, Immediate: true})
	if err != nil {
		return err
	}
	if !slices.Contains(db.FinalTaskStates, t.State) {
		if t, err = h.d.Tasks.WaitTask(ctx, t.ID); err != nil {
			return fmt.Errorf("wait for task %s: %w", t.ID, err)
		}
	}
	if t.State != db.TaskCompleted {
		return fmt.Errorf("task %s %s: %s", t.ID, t.State, string(t.Error))
	}
	h.cache.flush()
	ids := append(slices.Clone(add), remove...)
	if len(ids) > 0 {
		if err := h.d.DB.RemovePending(ctx, repo, ids); err != nil {
			return err
		}
	}
	return nil
}

// addBlob makes a stored artifact the blob digest of repo, pending until a manifest
// references it.
func (h *Handler) addBlob(ctx context.Context, repo uuid.UUID, digest string, art uuid.UUID) error {
	key, err := h.digestKey(h.roles.BlobType, digest)
	if err != nil {
		return err
	}
	fields, _ := json.Marshal(map[string]string{"digest": digest})
	units, err := h.d.DB.GetOrCreateContents(ctx, []db.NewContent{{PulpType: h.roles.BlobType, NaturalKey: key, Fields: fields}})
	if err != nil {
		return err
	}
	if err := h.d.DB.AddContentArtifacts(ctx, []db.ContentArtifact{{ContentID: units[0].ID, ArtifactID: &art, RelativePath: digest}}); err != nil {
		return err
	}
	return h.d.DB.AddPending(ctx, repo, []uuid.UUID{units[0].ID})
}

// putManifest answers PUT /v2/<name>/manifests/<tag|digest>: the bytes become an artifact,
// the plugin reads them into a unit, every blob and manifest it references must be in the
// repository (its latest version or pushed to it), and a new version holds the manifest,
// what it references and the tag.
func (h *Handler) putManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	if e := checkRef(rt.ref); e != nil {
		return e
	}
	if h.d.Plugin == nil {
		return errorf(http.StatusMethodNotAllowed, codeUnsupported, "the plugin cannot read pushed manifests", nil)
	}
	if r.ContentLength > maxManifestBytes {
		return errorf(http.StatusRequestEntityTooLarge, codeSizeInvalid, fmt.Sprintf("manifest exceeds %d bytes", maxManifestBytes), nil)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxManifestBytes+1))
	if err != nil {
		return errorf(http.StatusBadRequest, codeManifestInvalid, "reading the manifest failed: "+err.Error(), nil)
	}
	if len(body) > maxManifestBytes {
		return errorf(http.StatusRequestEntityTooLarge, codeSizeInvalid, fmt.Sprintf("manifest exceeds %d bytes", maxManifestBytes), nil)
	}
	sum := sha256.Sum256(body)
	sha := hex.EncodeToString(sum[:])
	// A manifest is named by the digest it was pushed by (sha512 too), else its sha256.
	digest := "sha256:" + sha
	if isDigest(rt.ref) && sha512RE.MatchString(rt.ref) {
		s := sha512.Sum512(body)
		digest = "sha512:" + hex.EncodeToString(s[:])
	}
	if isDigest(rt.ref) && rt.ref != digest {
		return errorf(http.StatusBadRequest, codeDigestInvalid, "the manifest's digest is "+digest, map[string]string{"digest": rt.ref})
	}
	s, err := h.pushScope(r, rt.name, ActionPush, true)
	if err != nil {
		return err
	}
	ctx, repo := r.Context(), s.Repository
	dc, err := h.d.Plugin.ContentFromUpload(ctx, abi.UploadRequest{Type: h.roles.ManifestType, MediaType: r.Header.Get("Content-Type"), Digest: digest},
		body, sha, &scopeHost{db: h.d.DB, scope: s, naturalKeys: h.naturalKeys})
	var ae *abi.Error
	switch {
	case errors.As(err, &ae) && ae.Code == abi.CodeInvalidInput:
		return errorf(http.StatusBadRequest, codeManifestInvalid, "manifest invalid: "+ae.Message, nil)
	case errors.As(err, &ae) && ae.Code == abi.CodeLimitExceeded:
		return errorf(http.StatusRequestEntityTooLarge, codeSizeInvalid, ae.Message, nil)
	case err != nil:
		return fmt.Errorf("read manifest: %w", err)
	}
	var fields manifestFields
	if err := json.Unmarshal(dc.Fields, &fields); err != nil || fields.Digest != digest {
		return fmt.Errorf("plugin read manifest %s as %s (%v)", digest, fields.Digest, err)
	}
	refs, err := h.references(ctx, s, dc.Relations)
	if err != nil {
		return err
	}
	art, _, err := h.d.Artifacts.Ingest(ctx, bytes.NewReader(body), int64(len(body)), map[string]string{"sha256": sha})
	if err != nil {
		return fmt.Errorf("store manifest %s: %w", digest, err)
	}
	key, err := db.NaturalKey(dc.Fields, h.naturalKeys[h.roles.ManifestType])
	if err != nil {
		return err
	}
	units, err := h.d.DB.GetOrCreateContents(ctx, []db.NewContent{{PulpType: h.roles.ManifestType, NaturalKey: key, Fields: dc.Fields}})
	if err != nil {
		return err
	}
	mid := units[0].ID
	if err := h.d.DB.AddContentArtifacts(ctx, []db.ContentArtifact{{ContentID: mid, ArtifactID: &art.ID, RelativePath: digest}}); err != nil {
		return err
	}
	rels := make([]db.Relation, 0, len(refs))
	add := []uuid.UUID{mid}
	for _, ref := range refs {
		rels = append(rels, db.Relation{From: mid, Name: ref.name, To: ref.id, Fields: ref.fields})
		add = append(add, ref.id)
	}
	if !isDigest(rt.ref) {
		tf, _ := json.Marshal(map[string]string{"name": rt.ref, "digest": digest})
		tkey, err := db.NaturalKey(tf, h.naturalKeys[h.roles.TagType])
		if err != nil {
			return fmt.Errorf("tag natural key: %w", err)
		}
		tags, err := h.d.DB.GetOrCreateContents(ctx, []db.NewContent{{PulpType: h.roles.TagType, NaturalKey: tkey, Fields: tf}})
		if err != nil {
			return err
		}
		rels = append(rels, db.Relation{From: tags[0].ID, Name: h.tagRel, To: mid})
		add = append(add, tags[0].ID)
	}
	if err := h.d.DB.AddRelations(ctx, rels); err != nil {
		return err
	}
	if err := h.modify(ctx, repo, add, nil); err != nil {
		return fmt.Errorf("push %s to %s: %w", rt.ref, rt.name, err)
	}
	hdr := w.Header()
	hdr.Set("Location", h.prefix+rt.name+"/manifests/"+digest)
	hdr.Set("Docker-Content-Digest", digest)
	if fields.Subject != "" {
		hdr.Set("OCI-Subject", fields.Subject)
	}
	hdr.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// reference is a unit a pushed manifest relates to, found in the repository.
type reference struct {
	name   string
	id     uuid.UUID
	fields json.RawMessage
}

// references finds every relation target in scope; one missing is MANIFEST_BLOB_UNKNOWN
// (blobs and listed manifests alike, as distribution answers).
func (h *Handler) references(ctx context.Context, s db.RegistryScope, rels []abi.Relation) ([]reference, error) {
	byType := map[string][]string{}
	keys := make([]string, len(rels))
	for i, rel := range rels {
		nk, ok := h.naturalKeys[rel.To.Type]
		if !ok {
			return nil, fmt.Errorf("relation %s to undeclared type %s", rel.Name, rel.To.Type)
		}
		k, err := db.NaturalKey(rel.To.Key, nk)
		if err != nil {
			return nil, fmt.Errorf("relation %s: %w", rel.Name, err)
		}
		keys[i] = k
		byType[rel.To.Type] = append(byType[rel.To.Type], k)
	}
	found := map[string]map[string]uuid.UUID{}
	for typ, ks := range byType {
		m, err := h.d.DB.RegistryUnitsByKeys(ctx, s, typ, ks)
		if err != nil {
			return nil, err
		}
		found[typ] = m
	}
	out := make([]reference, 0, len(rels))
	for i, rel := range rels {
		id, ok := found[rel.To.Type][keys[i]]
		if !ok {
			var key map[string]any
			_ = json.Unmarshal(rel.To.Key, &key)
			return nil, errorf(http.StatusBadRequest, codeManifestBlobUnknown, "manifest references "+string(rel.To.Key)+
				" which is not in the repository", key)
		}
		out = append(out, reference{name: rel.Name, id: id, fields: rel.Fields})
	}
	return out, nil
}

// deleteManifest removes a manifest by digest (with the tags pointing at it) or a tag from
// a new version of the push repository.
func (h *Handler) deleteManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	if e := checkRef(rt.ref); e != nil {
		return e
	}
	s, err := h.pushScope(r, rt.name, ActionDelete, false)
	if err != nil {
		return err
	}
	ctx, repo := r.Context(), s.Repository
	unknown := errorf(http.StatusNotFound, codeManifestUnknown, "manifest unknown", map[string]string{"name": rt.name, "reference": rt.ref})
	var remove []uuid.UUID
	if isDigest(rt.ref) {
		key, err := h.digestKey(h.roles.ManifestType, rt.ref)
		if err != nil {
			return err
		}
		u, err := h.d.DB.RegistryUnitByKey(ctx, s, h.roles.ManifestType, key)
		if errors.Is(err, db.ErrNotFound) {
			return unknown
		}
		if err != nil {
			return err
		}
		tags, err := h.d.DB.RegistryTagsOf(ctx, s, h.roles.TagType, h.tagRel, u.ContentID)
		if err != nil {
			return err
		}
		remove = append(tags, u.ContentID)
	} else {
		_, tag, err := h.d.DB.RegistryTag(ctx, s, h.roles.TagType, h.tagRel, rt.ref)
		if errors.Is(err, db.ErrNotFound) {
			return unknown
		}
		if err != nil {
			return err
		}
		remove = []uuid.UUID{tag}
	}
	if err := h.modify(ctx, repo, nil, remove); err != nil {
		return fmt.Errorf("delete %s from %s: %w", rt.ref, rt.name, err)
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// deleteBlob removes a blob from a new version of the push repository and from what was
// pushed to it.
func (h *Handler) deleteBlob(w http.ResponseWriter, r *http.Request, rt route) error {
	if e := checkDigest(rt.ref); e != nil {
		return e
	}
	s, err := h.pushScope(r, rt.name, ActionDelete, false)
	if err != nil {
		return err
	}
	ctx, repo := r.Context(), s.Repository
	key, err := h.digestKey(h.roles.BlobType, rt.ref)
	if err != nil {
		return err
	}
	u, err := h.d.DB.RegistryUnitByKey(ctx, s, h.roles.BlobType, key)
	if errors.Is(err, db.ErrNotFound) {
		return errorf(http.StatusNotFound, codeBlobUnknown, "blob unknown to registry", map[string]string{"digest": rt.ref})
	}
	if err != nil {
		return err
	}
	if err := h.modify(ctx, repo, nil, []uuid.UUID{u.ContentID}); err != nil {
		return fmt.Errorf("delete blob %s from %s: %w", rt.ref, rt.name, err)
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// pushScope finds the push repository behind name (making it when create is set and the
// action allows) and returns its latest version together with what was pushed to it but
// is in no version yet: where pushes and deletes look units up.
func (h *Handler) pushScope(r *http.Request, name string, action Action, create bool) (db.RegistryScope, error) {
	repo, err := h.pushRepo(r, name, action, create)
	if err != nil {
		return db.RegistryScope{}, err
	}
	latest, err := h.d.DB.LatestVersion(r.Context(), repo)
	if err != nil {
		return db.RegistryScope{}, err
	}
	return db.RegistryScope{Repository: repo, Number: latest.Number, Pending: true}, nil
}

// scopeHost answers a plugin's lookups during content_from_upload: in the repository's
// latest version (and pending content), or everywhere.
type scopeHost struct {
	db          *db.DB
	scope       db.RegistryScope
	naturalKeys map[string][]string
}

func (s *scopeHost) Lookup(ctx context.Context, req abi.LookupRequest) ([]abi.Content, error) {
	nk, ok := s.naturalKeys[req.Type]
	if !ok {
		return nil, fmt.Errorf("content type %s is not the plugin's", req.Type)
	}
	keys := make([]string, 0, len(req.Keys))
	for _, k := range req.Keys {
		key, err := db.NaturalKey(k, nk)
		if err != nil {
			return nil, err
		}
		keys = append(keys, key)
	}
	var found []db.Content
	var err error
	if req.Scope == abi.ScopeAll {
		found, err = s.db.ContentByKeys(ctx, req.Type, keys, nil)
	} else {
		var ids map[string]uuid.UUID
		if ids, err = s.db.RegistryUnitsByKeys(ctx, s.scope, req.Type, keys); err == nil {
			inScope := make([]string, 0, len(ids))
			for k := range ids {
				inScope = append(inScope, k)
			}
			found, err = s.db.ContentByKeys(ctx, req.Type, inScope, nil)
		}
	}
	if err != nil {
		return nil, err
	}
	return pluginhost.Contents(ctx, s.db, found)
}

func (s *scopeHost) StatArtifact(ctx context.Context, sha256 string) (int64, bool, error) {
	return pluginhost.StatArtifact(ctx, s.db, sha256)
}
