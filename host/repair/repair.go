// Package repair holds Pulp's repair task: it checks every stored artifact
// (or those of one repository version) for a missing file, a wrong size and,
// with verify_checksums, a wrong sha256, and fetches the bytes of each bad
// one again from the remotes that served its content. A file is replaced
// only by bytes verified against the artifact's size and sha256, atomically
// through the storage driver; nothing is ever deleted, so an artifact no
// remote can provide is reported and left as it is.
package repair

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/download"
	"github.com/pulpo/pulpo/host/href"
	"github.com/pulpo/pulpo/host/storage"
	"github.com/pulpo/pulpo/host/tasks"
)

// TaskName is the repair task's name.
const TaskName = "core.repair"

// Resource is the lock a repair of all artifacts holds alone, as pulpcore's
// /api/v3/repair/ lock: two global repairs never overlap.
const Resource = "/api/v3/repair/"

// Args select what a repair checks.
type Args struct {
	// VerifyChecksums hashes every file; without it only missing files and
	// wrong sizes are found.
	VerifyChecksums bool `json:"verify_checksums"`
	// Repository and Number select one repository version; nil: all artifacts.
	Repository *uuid.UUID `json:"repository,omitempty"`
	Number     int        `json:"number,omitempty"`
}

// Fetcher downloads url into a new file of dir, checked against exp; the
// caller owns the file. *download.Downloader satisfies it.
type Fetcher interface {
	FetchToFile(ctx context.Context, req download.Request, dir string) (string, download.Result, error)
}

// Service runs repairs.
type Service struct {
	DB      *db.DB
	Storage storage.Driver
	// TempDir receives downloads; on the storage's filesystem the
	// replacement is a rename.
	TempDir string
	// Downloader builds the downloader of a remote from its settings.
	Downloader func(db.Remote) (Fetcher, error)
	// Workers bounds artifacts checked at once (default 2: hashing is a
	// long sequential read, more readers make disk access random).
	Workers int
}

// Register adds the repair task to reg.
func (s *Service) Register(reg *tasks.Registry) { reg.Register(TaskName, s.run) }

// batch is how many artifacts are read from the database at once.
const batch = 500

// report holds the task's progress reports, pulpcore's three and one for
// artifacts no remote could provide.
type report struct {
	missing, corrupted, repaired, unrepairable *tasks.Progress
}

func (s *Service) run(ctx context.Context, t *tasks.Task) error {
	var a Args
	if err := t.Decode(&a); err != nil {
		return err
	}
	var rep report
	for _, p := range []struct {
		dst           **tasks.Progress
		code, message string
	}{
		{&rep.missing, "repair.missing", "Identify missing units"},
		{&rep.corrupted, "repair.corrupted", "Identify corrupted units"},
		{&rep.repaired, "repair.repaired", "Repair corrupted units"},
		{&rep.unrepairable, "repair.unrepairable", "Units that could not be repaired"},
	} {
		pr, err := t.Progress(ctx, p.code, p.message, -1)
		if err != nil {
			return err
		}
		*p.dst = pr
	}
	log := t.Logger()
	if a.Repository != nil {
		log.InfoContext(ctx, "repairing repository version", "repository", a.Repository, "number", a.Number, "verify_checksums", a.VerifyChecksums)
	} else {
		log.InfoContext(ctx, "repairing all artifacts", "verify_checksums", a.VerifyChecksums)
	}

	workers := s.Workers
	if workers <= 0 {
		workers = 2
	}
	jobs := make(chan db.Artifact)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	for range workers {
		wg.Go(func() {
			for art := range jobs {
				if err := s.check(wctx, t, rep, art, a.VerifyChecksums); err != nil {
					fail(err)
				}
			}
		})
	}
	feedErr := s.feed(wctx, a, jobs)
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if feedErr != nil {
		return feedErr
	}
	for _, p := range []*tasks.Progress{rep.missing, rep.corrupted, rep.repaired, rep.unrepairable} {
		if err := p.Done(ctx); err != nil {
			return err
		}
	}
	return nil
}

// feed sends the artifacts to check, page by page.
func (s *Service) feed(ctx context.Context, a Args, jobs chan<- db.Artifact) error {
	send := func(arts []db.Artifact) error {
		for _, art := range arts {
			select {
			case jobs <- art:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	if a.Repository != nil {
		ids, err := s.DB.VersionArtifactIDs(ctx, *a.Repository, a.Number)
		if err != nil {
			return fmt.Errorf("artifacts of version %d: %w", a.Number, err)
		}
		for len(ids) > 0 {
			n := min(batch, len(ids))
			arts, err := s.DB.ArtifactsByIDs(ctx, ids[:n])
			if err != nil {
				return fmt.Errorf("read artifacts: %w", err)
			}
			if err := send(arts); err != nil {
				return err
			}
			ids = ids[n:]
		}
		return nil
	}
	var after uuid.UUID
	for {
		arts, err := s.DB.ArtifactPage(ctx, after, batch)
		if err != nil {
			return fmt.Errorf("read artifacts: %w", err)
		}
		if len(arts) == 0 {
			return nil
		}
		if err := send(arts); err != nil {
			return err
		}
		after = arts[len(arts)-1].ID
	}
}

// check verifies one artifact and repairs it when it is bad. Only storage
// and database failures are errors; a bad artifact is counted.
func (s *Service) check(ctx context.Context, t *tasks.Task, rep report, art db.Artifact, verify bool) error {
	log := t.Logger().With("artifact", href.Flat(href.Artifacts, art.ID), "sha256", art.SHA256)
	bad, err := s.inspect(ctx, art, verify)
	if err != nil {
		return err
	}
	switch bad {
	case "":
		return nil
	case "missing":
		log.WarnContext(ctx, "artifact file missing", "file", art.File)
		if err := rep.missing.Increment(ctx, 1); err != nil {
			return err
		}
	default:
		log.WarnContext(ctx, "artifact file corrupted", "file", art.File, "problem", bad)
		if err := rep.corrupted.Increment(ctx, 1); err != nil {
			return err
		}
	}
	ok, err := s.refetch(ctx, log, art)
	if err != nil {
		return err
	}
	if ok {
		log.InfoContext(ctx, "artifact repaired")
		return rep.repaired.Increment(ctx, 1)
	}
	log.WarnContext(ctx, "artifact is unrepairable: no remote provided its bytes; left as it is")
	return rep.unrepairable.Increment(ctx, 1)
}

// inspect returns "" for a good file, "missing", or what is wrong with it.
func (s *Service) inspect(ctx context.Context, art db.Artifact, verify bool) (string, error) {
	info, err := s.Storage.Stat(ctx, art.File)
	if errors.Is(err, storage.ErrNotFound) {
		return "missing", nil
	}
	if err != nil {
		// A storage outage must not look like missing files.
		return "", fmt.Errorf("stat artifact %s: %w", art.SHA256, err)
	}
	if info.Size != art.Size {
		return fmt.Sprintf("size %d, expected %d", info.Size, art.Size), nil
	}
	if !verify {
		return "", nil
	}
	r, err := s.Storage.Open(ctx, art.File)
	if errors.Is(err, storage.ErrNotFound) {
		return "missing", nil
	}
	if err != nil {
		return "", fmt.Errorf("open artifact %s: %w", art.SHA256, err)
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, ctxReader{ctx, r})
	if err != nil {
		return "", fmt.Errorf("read artifact %s: %w", art.SHA256, err)
	}
	if n != art.Size {
		return fmt.Sprintf("size %d, expected %d", n, art.Size), nil
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != art.SHA256 {
		return "sha256 " + got, nil
	}
	return "", nil
}

// refetch downloads the artifact from each remote source in turn until one
// delivers the right bytes, and puts them in place. It reports whether the
// artifact was repaired.
func (s *Service) refetch(ctx context.Context, log *slog.Logger, art db.Artifact) (bool, error) {
	cas, err := s.DB.ContentArtifactsOfArtifact(ctx, art.ID)
	if err != nil {
		return false, err
	}
	seen := map[[2]string]bool{}
	for _, ca := range cas {
		sources, err := s.DB.RemoteSources(ctx, ca, time.Hour)
		if err != nil {
			return false, err
		}
		for _, src := range sources {
			k := [2]string{src.Remote.ID.String(), src.URL}
			if seen[k] {
				continue
			}
			seen[k] = true
			dl, err := s.Downloader(src.Remote)
			if err != nil {
				log.WarnContext(ctx, "repair: remote unusable", "remote", src.Remote.Name, "err", err)
				continue
			}
			// The downloader checks size and sha256 before handing the file over.
			path, _, err := dl.FetchToFile(ctx, download.Request{URL: src.URL,
				Expected: download.Expect{Size: art.Size, Digests: map[string]string{"sha256": art.SHA256}}}, s.TempDir)
			if c, ok := dl.(interface{ Close() }); ok {
				c.Close() // one downloader per attempt: drop its idle connections
			}
			if err != nil {
				if ctx.Err() != nil {
					return false, ctx.Err()
				}
				log.WarnContext(ctx, "repair: download failed", "remote", src.Remote.Name, "url", src.URL, "err", err)
				continue
			}
			return s.replace(ctx, art, path)
		}
	}
	return false, nil
}

// replace puts the verified file at the artifact's key, atomically (the
// driver's Adopt and Put never expose a partial object), unless the artifact
// was deleted meanwhile: a file without its row would be stray.
func (s *Service) replace(ctx context.Context, art db.Artifact, path string) (bool, error) {
	defer os.Remove(path) // gone already when adopted
	if ok, err := s.DB.ArtifactExists(ctx, art.ID); err != nil || !ok {
		return false, err
	}
	if ad, ok := s.Storage.(storage.Adopter); ok {
		if _, err := ad.Adopt(ctx, art.File, path); err != nil {
			return false, fmt.Errorf("store repaired artifact %s: %w", art.SHA256, err)
		}
		return true, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	if _, err := s.Storage.Put(ctx, art.File, f); err != nil {
		return false, fmt.Errorf("store repaired artifact %s: %w", art.SHA256, err)
	}
	return true, nil
}

// ctxReader stops a long hash when the task is canceled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
