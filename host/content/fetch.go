package content

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/artifact"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/download"
)

// fetcher runs the downloads of missing artifacts: one flight per content
// artifact at a time, whoever asks for it meanwhile reads the same file
// (Pulp downloads once per request: pulpcore #6584).
type fetcher struct {
	base     context.Context // ends at Handler.Close
	db       *db.DB
	arts     *artifact.Store
	dls      *downloaders
	cooldown time.Duration
	saved    func() // after an artifact is saved: resolutions changed
	log      *slog.Logger

	mu      sync.Mutex
	flights map[uuid.UUID]*flight
	running sync.WaitGroup
}

func newFetcher(base context.Context, d Deps, log *slog.Logger, saved func()) *fetcher {
	return &fetcher{base: base, db: d.DB, arts: d.Artifacts, dls: &downloaders{build: d.Downloader},
		cooldown: d.FailureCooldown, saved: saved, log: log, flights: map[uuid.UUID]*flight{}}
}

// join returns the flight of a content artifact, starting one if none runs,
// with the caller counted as a reader: it must call release.
func (f *fetcher) join(ca uuid.UUID) *flight {
	f.mu.Lock()
	defer f.mu.Unlock()
	// A streamed flight stopped for want of readers is not joined: it only
	// has its failure left to give.
	if fl := f.flights[ca]; fl != nil && fl.ctx.Err() == nil {
		fl.mu.Lock()
		fl.readers++
		fl.mu.Unlock()
		return fl
	}
	ctx, cancel := context.WithCancel(f.base)
	fl := &flight{f: f, ca: ca, ctx: ctx, cancel: cancel, changed: make(chan struct{}), size: -1, readers: 1}
	f.flights[ca] = fl
	f.running.Go(fl.run)
	return fl
}

// wait returns when every flight has ended.
func (f *fetcher) wait() { f.running.Wait() }

// sources lists where a content artifact can be fetched from, best first.
func (f *fetcher) sources(ctx context.Context, ca uuid.UUID) ([]db.RemoteSource, error) {
	return f.db.RemoteSources(ctx, ca, f.cooldown)
}

// expected picks the digests a download is checked against: those this host
// allows. A source offering none of them cannot be verified and is refused,
// as Pulp refuses remote artifacts with only forbidden checksums.
func (f *fetcher) expected(src db.RemoteSource) (download.Expect, error) {
	exp := download.Expect{Size: -1, Digests: map[string]string{}}
	if src.Size != nil {
		exp.Size = *src.Size
	}
	for _, name := range f.allowed() {
		if v, ok := src.Digests[name]; ok {
			exp.Digests[name] = v
		}
	}
	if len(exp.Digests) == 0 {
		return exp, fmt.Errorf("remote artifact %s has no allowed checksum (has %v)", src.URL, slices.Sorted(maps.Keys(src.Digests)))
	}
	return exp, nil
}

func (f *fetcher) allowed() []string {
	if len(f.arts.Checksums) == 0 {
		return []string{"sha256"}
	}
	return f.arts.Checksums
}

var errNoSource = errors.New("no remote artifact to fetch it from")

// flight is one download of a missing artifact into a temporary file that
// its readers follow as it grows. It belongs to no request: for on_demand
// it completes and saves whether or not anyone still reads; for streamed it
// stops when its last reader leaves.
type flight struct {
	f      *fetcher
	ca     uuid.UUID
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	changed chan struct{} // closed and replaced at every change
	file    *os.File      // set before the first byte is written
	path    string        // the file's name until saved or removed
	written int64
	size    int64  // expected size of the source being downloaded, -1 unknown
	sha256  string // expected sha256 of that source, "" unknown
	save    bool   // the source's remote is not streamed
	policy  bool   // size, sha256 and save are known
	// verified: every byte is in the file and matched the expected digests.
	verified bool
	done     bool
	err      error        // why the download failed (with verified false)
	stored   *db.Artifact // the artifact serving this content, once there is one
	readers  int
	closed   bool
}

func (fl *flight) run() {
	err := fl.fetch()
	fl.finish(err)
}

func (fl *flight) fetch() error {
	ctx, f := fl.ctx, fl.f
	if a, err := f.db.StoredArtifactOf(ctx, fl.ca); err == nil {
		// Saved meanwhile, by another request or process.
		fl.mu.Lock()
		fl.stored = &a
		fl.mu.Unlock()
		return nil
	} else if !errors.Is(err, db.ErrNotFound) {
		return fmt.Errorf("content artifact %s: %w", fl.ca, err)
	}
	srcs, err := f.sources(ctx, fl.ca)
	if err != nil {
		return fmt.Errorf("remote artifacts of %s: %w", fl.ca, err)
	}
	if len(srcs) == 0 {
		return errNoSource
	}
	file, err := os.CreateTemp(f.arts.TempDir, "content-*")
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	fl.mu.Lock()
	fl.file, fl.path = file, file.Name()
	fl.mu.Unlock()
	var errs []error
	for _, src := range srcs {
		err := fl.fetchFrom(ctx, src)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
		fl.mu.Lock()
		sent := fl.written > 0
		fl.mu.Unlock()
		// Once bytes went out, no other source can continue them.
		if sent || ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

// fetchFrom downloads from one source; on success the file is verified and,
// unless the remote is streamed, saved as the content artifact's artifact.
func (fl *flight) fetchFrom(ctx context.Context, src db.RemoteSource) error {
	exp, err := fl.f.expected(src)
	if err != nil {
		return err
	}
	dl, err := fl.f.dls.get(src.Remote)
	if err != nil {
		return err
	}
	fl.mu.Lock()
	fl.size, fl.sha256, fl.save, fl.policy = exp.Size, exp.Digests["sha256"], src.Remote.Policy != "streamed", true
	abandoned := !fl.save && fl.readers == 0
	fl.mu.Unlock()
	if abandoned {
		fl.cancel()
		return context.Canceled
	}
	var hdr http.Header
	for k, v := range src.Headers {
		if hdr == nil {
			hdr = http.Header{}
		}
		hdr.Set(k, v)
	}
	res, err := dl.Fetch(ctx, download.Request{URL: src.URL, Expected: exp, Header: hdr}, spoolWriter{fl})
	if err != nil {
		var de *download.DigestError
		var se *download.SizeError
		if errors.As(err, &de) || errors.As(err, &se) {
			// Other remotes go first for a while (pulpcore #5012).
			if merr := fl.f.db.MarkRemoteArtifactFailed(context.WithoutCancel(ctx), src.ID); merr != nil {
				fl.f.log.WarnContext(ctx, "mark remote artifact failed", "err", merr)
			}
		}
		return err
	}
	fl.mu.Lock()
	fl.verified = true
	fl.broadcast()
	save := fl.save
	fl.mu.Unlock()
	if !save {
		return nil
	}
	if err := fl.commit(ctx, res); err != nil {
		// The readers have their verified bytes; only the save is lost.
		fl.f.log.ErrorContext(ctx, "save on-demand artifact", "content_artifact", fl.ca, "url", res.URL, "err", err)
	}
	return nil
}

// commit moves the verified file into storage as an artifact and points the
// content artifact at it. Readers keep reading the open file.
func (fl *flight) commit(ctx context.Context, res download.Result) error {
	digests := map[string]string{}
	for _, n := range fl.f.allowed() {
		if v, ok := res.Digests[n]; ok {
			digests[n] = v
		}
	}
	fl.mu.Lock()
	path := fl.path
	fl.path = "" // Commit moves or removes it
	fl.mu.Unlock()
	a, _, err := fl.f.arts.Commit(ctx, artifact.FromFile(path, res.Size, digests), false)
	if err != nil {
		return err
	}
	if err := fl.f.db.SetContentArtifactFile(ctx, fl.ca, a.ID); err != nil {
		return fmt.Errorf("content artifact %s: %w", fl.ca, err)
	}
	fl.f.saved()
	fl.mu.Lock()
	fl.stored = &a
	fl.mu.Unlock()
	fl.f.log.DebugContext(ctx, "on-demand artifact saved", "content_artifact", fl.ca, "sha256", a.SHA256, "size", a.Size)
	return nil
}

// finish ends the flight: later requests start a new one (or find the saved
// artifact), and an unsaved file is unlinked at once; readers still hold it
// open.
func (fl *flight) finish(err error) {
	fl.f.mu.Lock()
	if fl.f.flights[fl.ca] == fl {
		delete(fl.f.flights, fl.ca)
	}
	fl.f.mu.Unlock()
	fl.mu.Lock()
	fl.done, fl.err = true, err
	if fl.path != "" {
		os.Remove(fl.path)
		fl.path = ""
	}
	fl.closeIfUnused()
	fl.broadcast()
	fl.mu.Unlock()
	fl.cancel()
	if err != nil && !errors.Is(err, context.Canceled) {
		fl.f.log.WarnContext(fl.ctx, "on-demand fetch failed", "content_artifact", fl.ca, "err", err)
	}
}

// release ends a reader's interest. A streamed download nobody reads any
// more stops; an on_demand one goes on to be saved.
func (fl *flight) release() {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	fl.readers--
	fl.closeIfUnused()
	if fl.readers == 0 && !fl.done && fl.policy && !fl.save {
		fl.cancel()
	}
}

// closeIfUnused closes the file once the download and every reader are done.
func (fl *flight) closeIfUnused() {
	if fl.done && fl.readers == 0 && !fl.closed {
		fl.closed = true
		if fl.file != nil {
			fl.file.Close()
		}
	}
}

// broadcast wakes every waiting reader; fl.mu is held.
func (fl *flight) broadcast() {
	close(fl.changed)
	fl.changed = make(chan struct{})
}

// spoolWriter appends downloaded bytes to the flight's file. It is no
// download.Rewinder: bytes may have reached clients, so a download that
// breaks after its first byte is not retried from the start.
type spoolWriter struct{ fl *flight }

func (s spoolWriter) Write(p []byte) (int, error) {
	n, err := s.fl.file.Write(p)
	s.fl.mu.Lock()
	s.fl.written += int64(n)
	s.fl.broadcast()
	s.fl.mu.Unlock()
	return n, err
}
