// Package artifact turns byte streams into stored, recorded artifacts: it
// spools a stream to the working directory while computing its digests,
// checks what the caller expected, moves the file into storage under its
// sha256 and records the artifact row. Nothing is stored when a check fails.
package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"

	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/digest"
	"github.com/pulpo/pulpo/host/directio"
	"github.com/pulpo/pulpo/host/storage"
)

// Store ingests artifacts.
type Store struct {
	DB      *db.DB
	Storage storage.Driver
	// TempDir is the working directory; on the storage's filesystem the
	// final move is a rename.
	TempDir string
	// Checksums are the digests computed and recorded (sha256 always).
	Checksums []string
}

// Spooled is a stream written to a temporary file with its digests; Commit
// or Discard it.
type Spooled struct {
	path    string
	Size    int64
	Digests map[string]string
}

// Spool copies r to a temporary file, computing digests on the way.
func (s *Store) Spool(ctx context.Context, r io.Reader) (*Spooled, error) {
	f, err := os.CreateTemp(s.TempDir, "artifact-*")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	h, err := digest.New(s.Checksums...)
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	// Either way the digests run on 1 MiB blocks, in parallel with the writes
	// and with each other.
	_, err = directio.Append(f, 0, ctxReader{ctx, r}, h, s.WriteDirect())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, fmt.Errorf("spool: %w", err)
	}
	return &Spooled{path: f.Name(), Size: h.Size(), Digests: h.Sums()}, nil
}

// WriteDirect tells whether files spooled for this store, here or by a caller
// such as the registry's uploads, should be written past the page cache: with
// storage that adopts local files (the filesystem) they are moved into place
// and flushed, not read back. With object storage they are read back at once
// to be sent to the bucket, so they are better left in the cache.
func (s *Store) WriteDirect() bool {
	_, ok := s.Storage.(storage.Adopter)
	return ok
}

// FromFile wraps a file already written and hashed (by a download) so it can
// be committed without reading it again.
func FromFile(path string, size int64, digests map[string]string) *Spooled {
	return &Spooled{path: path, Size: size, Digests: digests}
}

// Discard removes the temporary file.
func (sp *Spooled) Discard() { os.Remove(sp.path) }

// MismatchError reports a size or digest that differs from what was expected.
type MismatchError struct {
	Field    string // "size" or a digest name
	Expected string
	Actual   string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s mismatch: expected %s, got %s", e.Field, e.Expected, e.Actual)
}

// Check compares the spooled bytes with an expected size (< 0: unknown) and
// digests. Only digests this store computes can be checked; others are an
// error, as Pulp refuses checksums it does not allow.
func (sp *Spooled) Check(size int64, digests map[string]string) error {
	if size >= 0 && size != sp.Size {
		return &MismatchError{Field: "size", Expected: fmt.Sprint(size), Actual: fmt.Sprint(sp.Size)}
	}
	names := make([]string, 0, len(digests))
	for n := range digests {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		got, ok := sp.Digests[n]
		if !ok {
			return fmt.Errorf("checksum %s is not allowed here (allowed: %v)", n, keys(sp.Digests))
		}
		if got != digests[n] {
			return &MismatchError{Field: n, Expected: digests[n], Actual: got}
		}
	}
	return nil
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// ErrExists is returned by Commit with exclusive set when an artifact with
// the same sha256 is already recorded.
var ErrExists = errors.New("artifact exists")

// Commit moves the spooled file into storage and records the artifact. With
// exclusive, an existing artifact with the same sha256 gives ErrExists
// (wrapped, with the existing row returned); otherwise the existing row is
// returned and created is false. The temporary file is gone afterwards.
func (s *Store) Commit(ctx context.Context, sp *Spooled, exclusive bool) (a db.Artifact, created bool, err error) {
	defer sp.Discard()
	sha := sp.Digests["sha256"]
	if existing, err := s.DB.ArtifactBySHA256(ctx, sha); err == nil {
		if exclusive {
			return existing, false, fmt.Errorf("artifact with sha256 checksum of '%s' already exists: %w", sha, ErrExists)
		}
		// Make sure the bytes are really there (a repair may be pending).
		if _, serr := s.Storage.Stat(ctx, existing.File); serr == nil {
			a, _, err := s.DB.GetOrCreateArtifact(ctx, existing)
			return a, false, err
		}
	} else if !errors.Is(err, db.ErrNotFound) {
		return a, false, err
	}
	key, err := storage.ArtifactKey(sha)
	if err != nil {
		return a, false, err
	}
	if ad, ok := s.Storage.(storage.Adopter); ok {
		_, err = ad.Adopt(ctx, key, sp.path)
	} else {
		err = s.putFile(ctx, key, sp.path)
	}
	if err != nil {
		return a, false, fmt.Errorf("store artifact %s: %w", sha, err)
	}
	return s.DB.GetOrCreateArtifact(ctx, artifactRow(key, sp.Size, sp.Digests))
}

// artifactRow is the artifacts row of a stored file.
func artifactRow(key string, size int64, digests map[string]string) db.Artifact {
	row := db.Artifact{File: key, Size: size, SHA256: digests["sha256"]}
	for name, dst := range map[string]**string{"md5": &row.MD5, "sha1": &row.SHA1, "sha224": &row.SHA224, "sha384": &row.SHA384, "sha512": &row.SHA512} {
		if v, ok := digests[name]; ok {
			*dst = &v
		}
	}
	return row
}

// Staged is a file stored under its sha256 whose artifact row is not
// recorded yet; CommitStaged records it.
type Staged struct {
	Key     string
	Size    int64
	Digests map[string]string
}

// Stage moves a spooled, checked file into storage under its sha256 without
// waiting for it to reach stable storage, where the driver can defer that
// (a storage.BatchAdopter); other drivers store it durably at once. Nothing
// is recorded: the caller gathers staged files and hands them to
// CommitStaged, so a batch costs one flush and one insert. It does not look
// for an existing artifact; the caller has. The temporary file is gone
// afterwards.
func (s *Store) Stage(ctx context.Context, sp *Spooled) (Staged, error) {
	sha := sp.Digests["sha256"]
	key, err := storage.ArtifactKey(sha)
	if err != nil {
		sp.Discard()
		return Staged{}, err
	}
	// An adopted file is gone on success; Discard only what is left, as
	// the per-file syscalls count at thousands of files a second.
	switch d := s.Storage.(type) {
	case storage.BatchAdopter:
		_, err = d.AdoptNoSync(ctx, key, sp.path)
	case storage.Adopter:
		_, err = d.Adopt(ctx, key, sp.path)
	default:
		err = s.putFile(ctx, key, sp.path)
		sp.Discard()
	}
	if err != nil {
		sp.Discard()
		return Staged{}, fmt.Errorf("store artifact %s: %w", sha, err)
	}
	return Staged{Key: key, Size: sp.Size, Digests: sp.Digests}, nil
}

// CommitStaged makes the staged files durable with one storage Sync and only
// then records their artifacts, in one statement, so no row ever names a
// file a crash could lose. It returns the rows in the order of staged; an
// artifact recorded meanwhile by someone else is returned as stored.
func (s *Store) CommitStaged(ctx context.Context, staged []Staged) ([]db.Artifact, error) {
	if len(staged) == 0 {
		return nil, nil
	}
	rows := make([]db.Artifact, len(staged))
	keys := make([]string, len(staged))
	for i, st := range staged {
		rows[i] = artifactRow(st.Key, st.Size, st.Digests)
		keys[i] = st.Key
	}
	if b, ok := s.Storage.(storage.BatchAdopter); ok {
		if err := b.Sync(ctx, keys); err != nil {
			return nil, fmt.Errorf("make %d artifacts durable: %w", len(keys), err)
		}
	}
	arts, err := s.DB.GetOrCreateArtifacts(ctx, rows)
	if err != nil {
		return nil, fmt.Errorf("record %d artifacts: %w", len(rows), err)
	}
	return arts, nil
}

func (s *Store) putFile(ctx context.Context, key, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = s.Storage.Put(ctx, key, f)
	return err
}

// Ingest spools r, checks it and commits it in one step.
func (s *Store) Ingest(ctx context.Context, r io.Reader, size int64, digests map[string]string) (db.Artifact, bool, error) {
	sp, err := s.Spool(ctx, r)
	if err != nil {
		return db.Artifact{}, false, err
	}
	if err := sp.Check(size, digests); err != nil {
		sp.Discard()
		return db.Artifact{}, false, err
	}
	return s.Commit(ctx, sp, false)
}

// ctxReader stops a copy when ctx ends.
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
