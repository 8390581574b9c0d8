// Package publish runs publications: it hands a repository version's units to
// the plugin's publish export, stores the metadata files it writes as
// artifacts, records what the publication serves, and marks it complete. It
// also publishes new versions of repositories that ask for it (autopublish).
package publish

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"os"
	"strings"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/host/artifact"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/href"
	"github.com/pulpo/pulpo/host/plugin"
	"github.com/pulpo/pulpo/host/pluginhost"
	"github.com/pulpo/pulpo/host/tasks"
)

// TaskPublish is the name of the publish task.
const TaskPublish = "core.publish"

// Publisher runs a plugin's publish export; *plugin.Plugin implements it.
type Publisher interface {
	Publish(ctx context.Context, req abi.PublishRequest, content iter.Seq2[abi.Content, error], host plugin.PublishHost) (*plugin.PublishResult, error)
}

// Type is what the service knows of a publication type.
type Type struct {
	Plugin string
	// Fields are the declared fields with their defaults.
	Fields map[string]json.RawMessage
}

// Service publishes repository versions.
type Service struct {
	DB        *db.DB
	Artifacts *artifact.Store
	// Plugin finds a loaded plugin by name.
	Plugin func(name string) (Publisher, bool)
	// Types are the publication types, by pulp_type.
	Types map[string]Type
	// NaturalKeys are every content type's natural-key fields, for lookups.
	NaturalKeys map[string][]string
}

// Args are the arguments of TaskPublish, resolved by the API.
type Args struct {
	Type       string          `json:"publication_type"`
	Repository uuid.UUID       `json:"repository"`
	Version    int             `json:"version"`
	Fields     json.RawMessage `json:"fields,omitempty"`
}

// Register adds the publish task to reg.
func (s *Service) Register(reg *tasks.Registry) { reg.Register(TaskPublish, s.task) }

func (s *Service) task(ctx context.Context, t *tasks.Task) error {
	var a Args
	if err := t.Decode(&a); err != nil {
		return err
	}
	_, err := s.Publish(ctx, t, a)
	return err
}

// Href is a publication's href; its endpoint is named after its type.
func Href(pulpType string, id uuid.UUID) string {
	p, e, _ := strings.Cut(pulpType, ".")
	return href.Typed(href.Publications, p, e, id)
}

// Publish publishes one version under task t and records the publication as
// a resource the task created. On error the incomplete publication is left
// for the task runner to discard with the task's other incomplete work.
func (s *Service) Publish(ctx context.Context, t *tasks.Task, a Args) (db.Publication, error) {
	typ, ok := s.Types[a.Type]
	if !ok {
		return db.Publication{}, fmt.Errorf("publication type %q is not declared by any loaded plugin", a.Type)
	}
	pl, ok := s.Plugin(typ.Plugin)
	if !ok {
		return db.Publication{}, fmt.Errorf("plugin %q is not loaded", typ.Plugin)
	}
	repo, err := s.DB.GetRepository(ctx, a.Repository)
	if err != nil {
		return db.Publication{}, fmt.Errorf("repository: %w", err)
	}
	v, err := s.DB.GetVersion(ctx, repo.ID, a.Version)
	if err != nil {
		return db.Publication{}, fmt.Errorf("repository version %d: %w", a.Version, err)
	}
	if !v.Complete {
		return db.Publication{}, fmt.Errorf("repository version %d is not complete", a.Version)
	}
	fields := withDefaults(a.Fields, typ.Fields)
	pub, err := s.DB.CreatePublication(ctx, a.Type, v.ID, fields, &t.ID)
	if err != nil {
		return db.Publication{}, err
	}
	host := &pluginhost.Version{DB: s.DB, Task: t, NaturalKeys: s.NaturalKeys, Repository: repo.ID, Number: v.Number}
	res, err := pl.Publish(ctx, abi.PublishRequest{
		Publication: abi.Publication{Type: a.Type, Fields: fields},
		Repository:  abi.Repository{Name: repo.Name, Type: repo.PulpType, LatestVersion: int64(repo.LatestVersion), Fields: repo.Fields},
		Version:     int64(v.Number),
	}, listing(s.DB.VersionUnits(ctx, repo.ID, v.Number, 1000)), host)
	if err != nil {
		return db.Publication{}, fmt.Errorf("publish: %w", err)
	}
	defer res.Close()
	if err := s.storeMetadata(ctx, pub.ID, res.Metadata); err != nil {
		return db.Publication{}, err
	}
	if res.ArtifactsPath != "" {
		if err := s.layOut(ctx, pub.ID, repo.ID, v.Number, res.ArtifactsPath); err != nil {
			return db.Publication{}, err
		}
	}
	done, err := s.DB.CompletePublication(ctx, pub.ID, res.PassThrough)
	if err != nil {
		return db.Publication{}, err
	}
	return done, t.Created(ctx, Href(a.Type, done.ID))
}

// listing turns version units into the publish export's Content lines.
func listing(units iter.Seq2[db.VersionUnit, error]) iter.Seq2[abi.Content, error] {
	return func(yield func(abi.Content, error) bool) {
		for u, err := range units {
			if err != nil {
				yield(abi.Content{}, err)
				return
			}
			c := abi.Content{Type: u.PulpType, Fields: u.Fields, Artifacts: make([]abi.ContentArtifact, len(u.Artifacts))}
			for i, a := range u.Artifacts {
				c.Artifacts[i] = abi.ContentArtifact{RelativePath: a.RelativePath, SHA256: a.SHA256, Size: a.Size, Downloaded: a.Downloaded}
			}
			if !yield(c, nil) {
				return
			}
		}
	}
}

// storeMetadata keeps the plugin's metadata files as artifacts published at
// their relative paths.
func (s *Service) storeMetadata(ctx context.Context, pub uuid.UUID, files []abi.MetadataFile) error {
	items := make([]db.PublishedArtifact, 0, len(files))
	for _, m := range files {
		f, err := os.Open(m.Path)
		if err != nil {
			return fmt.Errorf("metadata %s: %w", m.RelativePath, err)
		}
		a, _, err := s.Artifacts.Ingest(ctx, f, -1, nil)
		f.Close()
		if err != nil {
			return fmt.Errorf("metadata %s: %w", m.RelativePath, err)
		}
		items = append(items, db.PublishedArtifact{RelativePath: m.RelativePath, ArtifactID: &a.ID})
	}
	if err := s.DB.AddPublishedArtifacts(ctx, pub, items); err != nil {
		return fmt.Errorf("publication metadata: %w", err)
	}
	return nil
}

// layoutBatch bounds the published artifacts recorded per statement.
const layoutBatch = 1000

// layOut records the unit artifacts the plugin published at paths of its own
// choosing, reading its JSON Lines file in batches.
func (s *Service) layOut(ctx context.Context, pub, repo uuid.UUID, number int, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("publish artifacts_path: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var batch []abi.PublishedArtifact
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		digests := make([]string, len(batch))
		for i, b := range batch {
			digests[i] = b.SHA256
		}
		found, err := s.DB.VersionContentArtifacts(ctx, repo, number, digests)
		if err != nil {
			return err
		}
		items := make([]db.PublishedArtifact, len(batch))
		for i, b := range batch {
			ca, ok := found[b.SHA256]
			if !ok {
				return fmt.Errorf("publish: %s at %q is not an artifact of repository version %d", b.SHA256, b.RelativePath, number)
			}
			items[i] = db.PublishedArtifact{RelativePath: b.RelativePath, ContentArtifactID: &ca}
		}
		batch = batch[:0]
		return s.DB.AddPublishedArtifacts(ctx, pub, items)
	}
	line := 0
	for sc.Scan() {
		line++
		var pa abi.PublishedArtifact
		if err := json.Unmarshal(sc.Bytes(), &pa); err != nil {
			return fmt.Errorf("publish artifacts_path line %d: %w", line, err)
		}
		if !abi.CleanRelativePath(pa.RelativePath) {
			return fmt.Errorf("publish artifacts_path line %d: %q is not a clean relative path", line, pa.RelativePath)
		}
		if batch = append(batch, pa); len(batch) == layoutBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("publish artifacts_path: %w", err)
	}
	return flush()
}

// withDefaults fills the declared fields a request left out with their defaults.
func withDefaults(given json.RawMessage, declared map[string]json.RawMessage) json.RawMessage {
	m := map[string]json.RawMessage{}
	if len(given) > 0 {
		_ = json.Unmarshal(given, &m)
	}
	for k, def := range declared {
		if _, ok := m[k]; !ok && len(def) > 0 {
			m[k] = def
		}
	}
	out, _ := json.Marshal(m)
	return out
}

// Autopublish publishes a new version of a repository whose "autopublish"
// field is true, with the publication type named like the repository type.
// Publication fields the repository also has (pulp_file's manifest) take the
// repository's values.
func (s *Service) Autopublish(ctx context.Context, t *tasks.Task, repoID uuid.UUID, number int) error {
	repo, err := s.DB.GetRepository(ctx, repoID)
	if err != nil {
		return err
	}
	var rf map[string]json.RawMessage
	if err := json.Unmarshal(repo.Fields, &rf); err != nil || string(rf["autopublish"]) != "true" {
		return nil
	}
	typ, ok := s.Types[repo.PulpType]
	if !ok {
		return nil
	}
	fields := map[string]json.RawMessage{}
	for k := range typ.Fields {
		if v, ok := rf[k]; ok {
			fields[k] = v
		}
	}
	b, _ := json.Marshal(fields)
	_, err = s.Publish(ctx, t, Args{Type: repo.PulpType, Repository: repo.ID, Version: number, Fields: b})
	if err != nil {
		return fmt.Errorf("autopublish: %w", err)
	}
	return nil
}
