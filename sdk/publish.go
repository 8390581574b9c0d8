package sdk

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"os"
	"path"
	"path/filepath"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/sdk/internal/bridge"
)

// Publish is one publish call: lay out a publication of a repository version by writing
// metadata files; the host serves artifacts and files.
type Publish struct {
	Publication abi.Publication
	Repository  abi.Repository
	// Version is the number of the repository version being published.
	Version int64
	// InDir holds the content listing (read-only); OutDir is where metadata is written.
	InDir, OutDir string
	Log           *slog.Logger

	host        bridge.Host
	cancel      context.CancelFunc
	contentPath string
	artifacts   *os.File
	artifactsW  *bufio.Writer
	resp        abi.PublishResponse
}

// Fields decodes the publication's plugin fields into v.
func (p *Publish) Fields(v any) error {
	return decodeFields("publication fields", p.Publication.Fields, v)
}

// RepositoryFields decodes the repository's plugin fields into v.
func (p *Publish) RepositoryFields(v any) error {
	return decodeFields("repository fields", p.Repository.Fields, v)
}

// Content iterates over every unit of the version, read from the listing the host wrote to
// the read-only mount.
func (p *Publish) Content() iter.Seq2[abi.Content, error] {
	return func(yield func(abi.Content, error) bool) {
		f, err := os.Open(p.contentPath)
		if err != nil {
			yield(abi.Content{}, fmt.Errorf("content listing: %w", err))
			return
		}
		defer f.Close()
		dec := json.NewDecoder(bufio.NewReaderSize(f, 256<<10))
		for {
			var c abi.Content
			err := dec.Decode(&c)
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(abi.Content{}, fmt.Errorf("content listing: %w", err))
				return
			}
			if !yield(c, nil) {
				return
			}
		}
	}
}

// PassThrough publishes every artifact of the version at its own relative path.
func (p *Publish) PassThrough() { p.resp.PassThrough = true }

// Create creates a metadata file published at relativePath. Close it before returning.
func (p *Publish) Create(relativePath string) (io.WriteCloser, error) {
	if !abi.CleanRelativePath(relativePath) {
		return nil, Errorf(abi.CodeInvalidInput, "metadata path %q is not a clean relative path", relativePath)
	}
	full := filepath.Join(p.OutDir, filepath.FromSlash(relativePath))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return nil, fmt.Errorf("metadata %s: %w", relativePath, err)
	}
	f, err := os.Create(full)
	if err != nil {
		return nil, fmt.Errorf("metadata %s: %w", relativePath, err)
	}
	p.resp.Metadata = append(p.resp.Metadata, abi.MetadataFile{RelativePath: relativePath, Path: path.Join(p.OutDir, relativePath)})
	return f, nil
}

// PublishArtifact places the artifact with this sha256 at relativePath in the publication,
// for layouts that are not pass-through.
func (p *Publish) PublishArtifact(relativePath, sha256 string) error {
	if !abi.CleanRelativePath(relativePath) {
		return Errorf(abi.CodeInvalidInput, "artifact path %q is not a clean relative path", relativePath)
	}
	if p.artifacts == nil {
		name := ".pulpo-published-artifacts.jsonl"
		f, err := os.Create(filepath.Join(p.OutDir, name))
		if err != nil {
			return fmt.Errorf("published artifacts: %w", err)
		}
		p.artifacts, p.artifactsW = f, bufio.NewWriter(f)
		p.resp.ArtifactsPath = path.Join(p.OutDir, name)
	}
	b, err := json.Marshal(abi.PublishedArtifact{RelativePath: relativePath, SHA256: sha256})
	if err != nil {
		return err
	}
	_, err = p.artifactsW.Write(append(b, '\n'))
	return err
}

// Progress reports progress.
func (p *Publish) Progress(ctx context.Context, r abi.ProgressReport) error {
	return progress(ctx, p.host, p.cancel, r)
}

// Lookup finds units by natural key (see Sync.Lookup).
func (p *Publish) Lookup(ctx context.Context, typeName, scope string, keys ...any) ([]abi.Content, error) {
	return lookup(ctx, p.host, p.cancel, typeName, scope, keys)
}

// ReadArtifact reads part of a stored artifact (see Sync.ReadArtifact).
func (p *Publish) ReadArtifact(ctx context.Context, sha256 string, offset, length int64) ([]byte, int64, error) {
	return readArtifact(ctx, p.host, p.cancel, sha256, offset, length)
}

func (p *Publish) finish() error {
	if p.artifacts == nil {
		return nil
	}
	err := p.artifactsW.Flush()
	if cerr := p.artifacts.Close(); err == nil {
		err = cerr
	}
	return err
}
