package coretask

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/tasks"
)

// CreateContent makes a unit from an artifact or an upload, optionally adding
// it to a repository in a new version.
const CreateContent = "core.create_content"

// CreateContentArgs are resolved and validated by the API.
type CreateContentArgs struct {
	Type   string          `json:"type"`
	Fields json.RawMessage `json:"fields"` // every field but the digest field
	// DigestField receives the artifact's sha256; NaturalKey lists the key fields.
	DigestField  string   `json:"digest_field"`
	NaturalKey   []string `json:"natural_key"`
	RelativePath string   `json:"relative_path"`
	// Exactly one of Artifact and Upload (with its expected SHA256).
	Artifact     *uuid.UUID `json:"artifact,omitempty"`
	Upload       *uuid.UUID `json:"upload,omitempty"`
	UploadSHA256 string     `json:"upload_sha256,omitempty"`
	// ContentHref is the unit's list path; its href is ContentHref + id + "/".
	ContentHref string `json:"content_href"`
	// Repository, when set, gets a new version holding the unit.
	Repository   *uuid.UUID          `json:"repository,omitempty"`
	RepoHref     string              `json:"repository_href,omitempty"`
	ContentTypes []string            `json:"content_types,omitempty"`
	RepoKeys     map[string][]string `json:"repo_keys,omitempty"`
}

func (d Deps) createContent(ctx context.Context, t *tasks.Task) error {
	var a CreateContentArgs
	if err := t.Decode(&a); err != nil {
		return err
	}
	var art db.Artifact
	var err error
	switch {
	case a.Artifact != nil:
		if art, err = d.DB.GetArtifact(ctx, *a.Artifact); err != nil {
			return fmt.Errorf("artifact %s: %w", *a.Artifact, err)
		}
	case a.Upload != nil:
		if art, err = d.uploadToArtifact(ctx, t, *a.Upload, a.UploadSHA256); err != nil {
			return err
		}
	default:
		return errors.New("create content: neither an artifact nor an upload")
	}
	fields := map[string]any{}
	if err := json.Unmarshal(a.Fields, &fields); err != nil {
		return fmt.Errorf("create content: fields: %w", err)
	}
	fields[a.DigestField] = art.SHA256
	b, err := json.Marshal(fields)
	if err != nil {
		return err
	}
	key, err := db.NaturalKey(b, a.NaturalKey)
	if err != nil {
		return fmt.Errorf("create content: %w", err)
	}
	units, err := d.DB.GetOrCreateContents(ctx, []db.NewContent{{PulpType: a.Type, NaturalKey: key, Fields: b}})
	if err != nil {
		return err
	}
	unit := units[0]
	if err := d.DB.AddContentArtifacts(ctx, []db.ContentArtifact{{ContentID: unit.ID, ArtifactID: &art.ID, RelativePath: a.RelativePath}}); err != nil {
		return err
	}
	if err := t.Created(ctx, a.ContentHref+unit.ID.String()+"/"); err != nil {
		return err
	}
	if a.Repository == nil {
		return nil
	}
	v, err := d.DB.NewVersion(ctx, *a.Repository, &t.ID, nil)
	if err != nil {
		return fmt.Errorf("new version: %w", err)
	}
	if err := d.DB.AddContent(ctx, *a.Repository, v.Number, []uuid.UUID{unit.ID}); err != nil {
		return fmt.Errorf("add content: %w", err)
	}
	return FinishVersion(ctx, t, *a.Repository, a.RepoHref, v.Number, a.ContentTypes, a.RepoKeys, d.OnNewVersion)
}

// uploadToArtifact commits an upload's chunks into an artifact and removes the upload.
func (d Deps) uploadToArtifact(ctx context.Context, t *tasks.Task, id uuid.UUID, sha256 string) (db.Artifact, error) {
	u, err := d.DB.GetUpload(ctx, id)
	if err != nil {
		return db.Artifact{}, fmt.Errorf("upload %s: %w", id, err)
	}
	chunks, err := d.DB.UploadChunks(ctx, id)
	if err != nil {
		return db.Artifact{}, err
	}
	art, _, err := d.Artifacts.Ingest(ctx, &chunkReader{ctx: ctx, st: d.Storage, chunks: chunks}, u.Size, map[string]string{"sha256": sha256})
	if err != nil {
		return db.Artifact{}, fmt.Errorf("commit upload: %w", err)
	}
	if _, err := d.DB.DeleteUpload(ctx, id); err != nil && !errors.Is(err, db.ErrNotFound) {
		return db.Artifact{}, err
	}
	for _, c := range chunks {
		if err := d.Storage.Delete(ctx, c.File); err != nil {
			t.Logger().WarnContext(ctx, "delete upload chunk", "key", c.File, "err", err)
		}
	}
	return art, nil
}
