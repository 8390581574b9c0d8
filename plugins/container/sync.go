package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/sdk"
)

// Progress report codes and messages, as pulp_container reports them.
const (
	codeTagList = "sync.downloading.tag_list"
	msgTagList  = "Downloading tag list"
	codeTags    = "sync.processing.tag"
	msgTags     = "Processing Tags"
)

// Limits on what a sync reads into the plugin's memory. Manifests are small (registries
// commonly refuse more than 4 MiB); an index of thousands of entries stays far below.
const (
	maxManifestBytes = 16 << 20
	maxConfigBytes   = 16 << 20
	maxTagPageBytes  = 64 << 20
	// maxIndexDepth bounds indexes listing indexes; content addressing rules out
	// cycles, so this only stops a pathological upstream early.
	maxIndexDepth = 4
)

// remoteFields are the container.container remote's fields.
type remoteFields struct {
	UpstreamName string   `json:"upstream_name"`
	IncludeTags  []string `json:"include_tags"`
	ExcludeTags  []string `json:"exclude_tags"`
	// Includes and Excludes are pulp_container 2.28's names for the same lists; both
	// spellings are honoured, merged.
	Includes             []string `json:"includes"`
	Excludes             []string `json:"excludes"`
	IncludeForeignLayers bool     `json:"include_foreign_layers"`
}

// syncDetails is what a sync leaves in the repository's last sync details, for people
// looking at a repository (nothing reads it back).
type syncDetails struct {
	URL          string `json:"url"`
	UpstreamName string `json:"upstream_name"`
	Tags         int    `json:"tags"`
	Manifests    int    `json:"manifests"`
	Blobs        int    `json:"blobs"`
}

// registry builds the URLs of one upstream repository.
type registry struct {
	// base is the remote url's scheme, userinfo and host: like pulp_container (which
	// joins "/v2/..." to the url), the url's path is ignored, since the distribution API
	// lives at /v2/ of the host.
	base   string
	scheme string
	host   string
	name   string
}

func newRegistry(remoteURL, upstreamName string) (*registry, error) {
	u, err := url.Parse(remoteURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, sdk.Errorf(abi.CodeInvalidInput, "remote url %q: want the registry's http(s) url, like https://registry.example.org", remoteURL)
	}
	name := upstreamName
	if name == "" {
		return nil, sdk.Errorf(abi.CodeInvalidInput, "remote field upstream_name is empty")
	}
	// Docker Hub keeps official images under library/, which its clients add to a name
	// without a namespace; pulp_container does the same.
	if h := u.Hostname(); (h == "docker.io" || strings.HasSuffix(h, ".docker.io")) && !strings.Contains(name, "/") {
		name = "library/" + name
	}
	if !nameRE.MatchString(name) {
		return nil, sdk.Errorf(abi.CodeInvalidInput, "upstream_name %q is not a repository name (lowercase path components of [a-z0-9] and separators)", upstreamName)
	}
	b := url.URL{Scheme: u.Scheme, User: u.User, Host: u.Host}
	return &registry{base: b.String(), scheme: u.Scheme, host: u.Host, name: name}, nil
}

func (r *registry) tagsURL() string { return r.base + "/v2/" + r.name + "/tags/list" }

func (r *registry) manifestURL(ref string) string {
	return r.base + "/v2/" + r.name + "/manifests/" + ref
}

func (r *registry) blobURL(digest string) string {
	return r.base + "/v2/" + r.name + "/blobs/" + digest
}

// syncer is one sync's state. It lives for one sync_first_stage call only.
type syncer struct {
	s        *sdk.Sync
	reg      *registry
	deferred bool
	foreign  bool
	// blobs and manifests are the digests emitted so far: each unit is emitted once,
	// before anything that relates to it.
	blobs     map[string]bool
	manifests map[string]bool
	configs   map[string]*imageConfig
	fetches   int
}

// syncFirstStage lists the upstream repository's tags, keeps those the remote's filters
// select, and emits for each tag its blobs, its manifest(s) and the tag itself, in that
// order, so that every relation's target is emitted before the unit pointing at it.
func syncFirstStage(ctx context.Context, s *sdk.Sync) error {
	var rf remoteFields
	if err := s.RemoteFields(&rf); err != nil {
		return err
	}
	reg, err := newRegistry(s.Remote.URL, rf.UpstreamName)
	if err != nil {
		return err
	}
	filter, digests, err := newTagFilter(slices.Concat(rf.IncludeTags, rf.Includes), slices.Concat(rf.ExcludeTags, rf.Excludes))
	if err != nil {
		return sdk.Errorf(abi.CodeInvalidInput, "remote %s: %v", s.Remote.Name, err)
	}
	sy := &syncer{s: s, reg: reg, deferred: s.Deferred(), foreign: rf.IncludeForeignLayers,
		blobs: map[string]bool{}, manifests: map[string]bool{}, configs: map[string]*imageConfig{}}

	if err := s.Progress(ctx, abi.ProgressReport{Code: codeTagList, Message: msgTagList, Total: 1}); err != nil {
		return err
	}
	all, err := sy.listTags(ctx)
	if err != nil {
		return err
	}
	if err := s.Progress(ctx, abi.ProgressReport{Code: codeTagList, Message: msgTagList, State: abi.StateCompleted, Done: 1, Total: 1}); err != nil {
		return err
	}

	// With filters, cosign's companion tags (signatures, attestations, SBOMs) are not
	// matched against them: they follow the manifests they belong to (pulp_container
	// #2096), so that "includes: [v1.*]" brings v1.2's signature along.
	var tags, companions []string
	for _, t := range all {
		if _, ok := companionOf(t); ok && filter.filtered() {
			companions = append(companions, t)
		} else if filter.keep(t) {
			tags = append(tags, t)
		}
	}

	total := int64(len(tags) + len(digests))
	done := int64(0)
	report := func(state string) error {
		return s.Progress(ctx, abi.ProgressReport{Code: codeTags, Message: msgTags, State: state, Done: done, Total: total})
	}
	if err := report(abi.StateRunning); err != nil {
		return err
	}
	synced := 0
	syncTag := func(tag string) error {
		if s.Cancelled() {
			return sdk.Errorf(abi.CodeCancelled, "sync cancelled after %d tags", synced)
		}
		ok, err := sy.tag(ctx, tag)
		if ok {
			synced++
		}
		return err
	}
	for _, t := range tags {
		if err := syncTag(t); err != nil {
			return err
		}
		done++
		if err := report(abi.StateRunning); err != nil {
			return err
		}
	}
	for _, d := range digests {
		if _, err := sy.manifest(ctx, d, d, nil, 0); err != nil {
			if ue := (*unsupportedError)(nil); errors.As(err, &ue) {
				s.Log.Warn("manifest skipped", "digest", d, "reason", ue.Error())
			} else {
				return err
			}
		}
		done++
		if err := report(abi.StateRunning); err != nil {
			return err
		}
	}
	for _, t := range companions {
		if subject, _ := companionOf(t); sy.manifests[subject] && !filter.excluded(t) {
			total++
			if err := syncTag(t); err != nil {
				return err
			}
			done++
		}
	}
	if err := report(abi.StateCompleted); err != nil {
		return err
	}
	return s.SetDetails(syncDetails{URL: s.Remote.URL, UpstreamName: reg.name, Tags: synced,
		Manifests: len(sy.manifests), Blobs: len(sy.blobs)})
}

// name returns a fresh file name under /in for a fetch: names are never reused, so no
// fetched file is ever replaced while the plugin may still read it.
func (sy *syncer) name(kind string) string {
	sy.fetches++
	return fmt.Sprintf("%s/%d.json", kind, sy.fetches)
}

// read returns a fetched body, refusing one larger than limit.
func read(f *sdk.Fetched, url string, limit int64) ([]byte, error) {
	if f.Size > limit {
		return nil, sdk.Errorf(abi.CodeLimitExceeded, "%s: %d bytes, more than the %d a sync reads", url, f.Size, limit)
	}
	b, err := os.ReadFile(f.Path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", url, err)
	}
	return b, nil
}

// tagList is the body of GET /v2/<name>/tags/list.
type tagList struct {
	Name string   `json:"name"`
	Tags []string `json:"tags"`
}

// listTags fetches every page of the tag list, following the Link header's rel="next"
// as the distribution spec describes and pulp_container does. Tags are returned in the
// upstream's order without repeats; invalid tag names are skipped with a warning.
func (sy *syncer) listTags(ctx context.Context) ([]string, error) {
	var out []string
	seenTag := map[string]bool{}
	seenPage := map[string]bool{}
	for next := sy.reg.tagsURL(); next != ""; {
		if seenPage[next] {
			return nil, sdk.Errorf(abi.CodeUpstream, "tag list: page %s links back to itself", next)
		}
		seenPage[next] = true
		page := next
		f, err := sy.s.Fetch(ctx, page, sdk.Name(sy.name("tags")), sdk.Header("accept", "application/json"))
		if err != nil {
			if se := (*sdk.StatusError)(nil); errors.As(err, &se) {
				return nil, sdk.Errorf(abi.CodeUpstream, "tag list %s: HTTP %d (is upstream_name %q right?)", page, se.Status, sy.reg.name)
			}
			return nil, fmt.Errorf("tag list: %w", err)
		}
		b, err := read(f, page, maxTagPageBytes)
		if err != nil {
			return nil, err
		}
		var tl tagList
		if err := json.Unmarshal(b, &tl); err != nil {
			return nil, sdk.Errorf(abi.CodeUpstream, "tag list %s: %v", page, err)
		}
		for _, t := range tl.Tags {
			switch {
			case !tagRE.MatchString(t):
				sy.s.Log.Warn("invalid tag name skipped", "tag", t, "url", page)
			case !seenTag[t]:
				seenTag[t] = true
				out = append(out, t)
			}
		}
		if next, err = nextLink(f.Header["link"], page); err != nil {
			return nil, sdk.Errorf(abi.CodeUpstream, "tag list %s: %v", page, err)
		}
		if next != "" {
			// The remote's credentials go with every fetch: never follow a link to
			// another server.
			if u, err := url.Parse(next); err != nil || u.Scheme != sy.reg.scheme || u.Host != sy.reg.host {
				return nil, sdk.Errorf(abi.CodeUpstream, "tag list %s: next page %s is on another server", page, next)
			}
		}
	}
	return out, nil
}

// tag syncs one tag: its manifest (and everything under it), then the tag. It reports
// false for a tag skipped: gone upstream since the listing, or pointing at a manifest of
// a kind not synced.
func (sy *syncer) tag(ctx context.Context, tag string) (bool, error) {
	digest, err := sy.manifest(ctx, tag, "", nil, 0)
	var ue *unsupportedError
	switch {
	case errors.As(err, &ue):
		sy.s.Log.Warn("tag skipped", "tag", tag, "reason", ue.Error())
		return false, nil
	case err != nil:
		return false, fmt.Errorf("tag %s: %w", tag, err)
	}
	return true, sy.s.EmitUnit(ctx, sdk.Unit{
		Content:   Tag{Name: tag, Digest: digest},
		Relations: []sdk.Relation{{Name: relTaggedWith, To: Manifest{Digest: digest}}},
	})
}

// manifest fetches the manifest ref (a tag, or a digest given again as want) and emits it
// with everything it references, unless it was emitted already; it returns its digest.
// hint is the platform an index gives it.
func (sy *syncer) manifest(ctx context.Context, ref, want string, hint *Platform, depth int) (string, error) {
	if want != "" && sy.manifests[want] {
		return want, nil
	}
	u := sy.reg.manifestURL(ref)
	f, err := sy.s.Fetch(ctx, u, sdk.Name(sy.name("manifests")), sdk.Header("accept", acceptManifests))
	if err != nil {
		if se := (*sdk.StatusError)(nil); errors.As(err, &se) {
			if se.Status == http.StatusNotFound && want == "" {
				return "", &unsupportedError{fmt.Sprintf("%s: not found upstream (deleted since the tag list?)", u)}
			}
			return "", sdk.Errorf(abi.CodeUpstream, "manifest %s: HTTP %d", u, se.Status)
		}
		return "", fmt.Errorf("manifest: %w", err)
	}
	body, err := read(f, u, maxManifestBytes)
	if err != nil {
		return "", err
	}
	// The digest names the bytes: the one asked for, else the registry's
	// Docker-Content-Digest, else the sha256 of what arrived. Whichever it is, the bytes
	// must have it, or the stored artifact would not be what clients pull by digest.
	digest := want
	if digest == "" {
		digest = f.Header["docker-content-digest"]
		if checkDigest(digest) != nil {
			digest = "sha256:" + f.SHA256
		}
	}
	if err := verifyDigest(body, digest); err != nil {
		return "", sdk.Errorf(abi.CodeUpstream, "manifest %s: %v", u, err)
	}
	if sy.manifests[digest] {
		return digest, nil
	}
	pm, err := parseManifest(body, f.Header["content-type"])
	if err != nil {
		if ue := (*unsupportedError)(nil); errors.As(err, &ue) {
			return "", &unsupportedError{fmt.Sprintf("%s: %v", u, ue.what)}
		}
		return "", sdk.Errorf(abi.CodeUpstream, "manifest %s: %v", u, err)
	}
	// The host downloads the manifest once more from its by-digest URL and stores those
	// exact bytes, checked against the sha256 of what arrived here. Manifests are never
	// deferred: the registry API serves them from storage whatever the policy, and they
	// are metadata, as the tag list is. The host's download sends the same Accept as this
	// fetch: a registry built on distribution answers a manifest GET without a matching
	// Accept with a converted manifest or a 404.
	art := abi.DeclarativeArtifact{RelativePath: digest, URL: sy.reg.manifestURL(digest), SHA256: f.SHA256, Size: f.Size,
		Headers: map[string]string{"accept": acceptManifests}}
	unit := sdk.Unit{Artifacts: []abi.DeclarativeArtifact{art}}
	m := Manifest{Digest: digest, SchemaVersion: pm.raw.SchemaVersion, MediaType: pm.mediaType,
		Annotations: orEmpty(pm.raw.Annotations), Labels: map[string]string{}}
	// The subject makes the manifest a referrer of another (signatures, SBOMs), as a push
	// does. An upstream's unusable subject digest costs the link, not the manifest.
	if m.Subject, err = subjectOf(&pm.raw); err != nil {
		sy.s.Log.Warn("subject ignored", "manifest", digest, "reason", err.Error())
	}
	if pm.isIndex() {
		if depth >= maxIndexDepth {
			return "", sdk.Errorf(abi.CodeUpstream, "manifest %s: indexes nested more than %d deep", u, maxIndexDepth)
		}
		m.Type = "index"
		m.ArtifactType = pm.raw.ArtifactType
		listed := map[string]bool{}
		for _, e := range pm.raw.Manifests {
			if e.MediaType != "" && !slices.Contains(manifestMediaTypes, e.MediaType) {
				sy.s.Log.Warn("index entry skipped", "index", digest, "entry", e.Digest, "media_type", e.MediaType)
				continue
			}
			p := platform(e.Platform)
			child, err := sy.manifest(ctx, e.Digest, e.Digest, p, depth+1)
			if ue := (*unsupportedError)(nil); errors.As(err, &ue) {
				sy.s.Log.Warn("index entry skipped", "index", digest, "entry", e.Digest, "reason", ue.Error())
				continue
			}
			if err != nil {
				return "", err
			}
			if listed[child] {
				continue // one relation per target
			}
			listed[child] = true
			rel := sdk.Relation{Name: relListed, To: Manifest{Digest: child}}
			if p != nil {
				rel.Fields = p
			}
			unit.Relations = append(unit.Relations, rel)
		}
	} else {
		if err := sy.image(ctx, pm, &m, &unit, hint); err != nil {
			return "", fmt.Errorf("manifest %s: %w", u, err)
		}
	}
	unit.Content = m
	if err := sy.s.EmitUnit(ctx, unit); err != nil {
		return "", err
	}
	sy.manifests[digest] = true
	return digest, nil
}

// image fills in an image (or artifact) manifest's fields and relations and emits its
// config and layer blobs.
func (sy *syncer) image(ctx context.Context, pm *parsedManifest, m *Manifest, unit *sdk.Unit, hint *Platform) error {
	raw := &pm.raw
	cfg, err := sy.config(ctx, m.Digest, raw.Config)
	if err != nil {
		return err
	}
	if cfg != nil {
		m.setConfig(cfg)
	}
	if hint != nil {
		if m.Architecture == "" {
			m.Architecture = hint.Architecture
		}
		if m.OS == "" {
			m.OS = hint.OS
		}
	}
	m.Type = classify(raw, m.Labels)
	m.ArtifactType = artifactType(raw)

	if err := sy.blob(ctx, *raw.Config); err != nil {
		return err
	}
	unit.Relations = append(unit.Relations, sdk.Relation{Name: relConfig, To: Blob{Digest: raw.Config.Digest}})
	related := map[string]bool{}
	for _, l := range raw.Layers {
		m.CompressedImageSize += l.Size
		if foreignLayers[l.MediaType] && !sy.foreign {
			continue
		}
		if err := sy.blob(ctx, l); err != nil {
			return err
		}
		if !related[l.Digest] {
			related[l.Digest] = true
			unit.Relations = append(unit.Relations, sdk.Relation{Name: relBlobs, To: Blob{Digest: l.Digest}})
		}
	}
	return nil
}

// blob emits a blob unit once. Its artifact is deferred unless the policy is immediate.
func (sy *syncer) blob(ctx context.Context, d Descriptor) error {
	if sy.blobs[d.Digest] {
		return nil
	}
	art := abi.DeclarativeArtifact{RelativePath: d.Digest, URL: sy.reg.blobURL(d.Digest), Deferred: sy.deferred}
	if d.Size > 0 {
		art.Size = d.Size
	}
	switch alg, hex, _ := strings.Cut(d.Digest, ":"); alg {
	case "sha256":
		art.SHA256 = hex
	default:
		art.Digests = map[string]string{alg: hex}
	}
	if err := sy.s.Emit(ctx, Blob{Digest: d.Digest}, art); err != nil {
		return err
	}
	sy.blobs[d.Digest] = true
	return nil
}

// config returns an image config's labels, os and architecture, or nil for configs that
// are not an image's (OCI artifacts). A manifest the host already stores keeps what was
// read then, without fetching its config again; other configs are fetched as metadata.
// (The config blob itself is emitted like any blob: the host stores it by the policy.)
func (sy *syncer) config(ctx context.Context, manifestDigest string, d *Descriptor) (*imageConfig, error) {
	if !isImageConfig(d.MediaType) {
		return nil, nil //nolint:nilnil // no config to read is not an error
	}
	if c, ok := sy.configs[d.Digest]; ok {
		return c, nil
	}
	stored, err := sy.s.Lookup(ctx, manifestType, abi.ScopeAll, Manifest{Digest: manifestDigest}.key())
	if err != nil {
		return nil, err
	}
	if len(stored) > 0 {
		var m Manifest
		if err := json.Unmarshal(stored[0].Fields, &m); err == nil {
			c := &imageConfig{Architecture: m.Architecture, OS: m.OS}
			c.Config.Labels = m.Labels
			return c, nil
		}
	}
	if d.Size > maxConfigBytes {
		sy.s.Log.Warn("config too large to read labels from", "config", d.Digest, "size", d.Size)
		return nil, nil //nolint:nilnil // an image without labels still syncs
	}
	u := sy.reg.blobURL(d.Digest)
	f, err := sy.s.Fetch(ctx, u, sdk.Name(sy.name("configs")))
	if err != nil {
		if se := (*sdk.StatusError)(nil); errors.As(err, &se) {
			return nil, sdk.Errorf(abi.CodeUpstream, "config %s: HTTP %d", u, se.Status)
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	body, err := read(f, u, maxConfigBytes)
	if err != nil {
		return nil, err
	}
	if err := verifyDigest(body, d.Digest); err != nil {
		return nil, sdk.Errorf(abi.CodeUpstream, "config %s: %v", u, err)
	}
	c := &imageConfig{}
	if err := json.Unmarshal(body, c); err != nil {
		return nil, sdk.Errorf(abi.CodeUpstream, "config %s: %v", u, err)
	}
	sy.configs[d.Digest] = c
	return c, nil
}

// key is a manifest's natural key, for lookups.
func (m Manifest) key() map[string]string { return map[string]string{"digest": m.Digest} }

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
