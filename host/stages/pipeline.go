package stages

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/host/artifact"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/tasks"
)

// Downloader fetches from one remote with its TLS, proxy, auth and limits.
type Downloader interface {
	// Download stores url's body in a new file under dir, checking the
	// expected size (< 0: unknown) and digests, and returns its path, size
	// and digests (sha256 always). header holds the artifact's extra request
	// headers (DeclarativeArtifact.Headers), nil for none.
	Download(ctx context.Context, url string, header map[string]string, size int64, digests map[string]string, dir string) (path string, gotSize int64, gotDigests map[string]string, err error)
	// Stream sends a GET or HEAD for url and writes a 2xx GET's body to w;
	// any final HTTP status is returned, not an error (a plugin's fetch).
	Stream(ctx context.Context, method, url string, header map[string]string, w io.Writer) (status int, h http.Header, err error)
	// Concurrency is the remote's download_concurrency.
	Concurrency() int
}

// TypeInfo is what the stages need to know of a content type.
type TypeInfo struct {
	NaturalKey []string
}

// Pipeline configures one sync's stages.
type Pipeline struct {
	DB         *db.DB
	Artifacts  *artifact.Store
	TempDir    string
	Types      map[string]TypeInfo
	RemoteID   uuid.UUID
	Downloader Downloader
	Repository uuid.UUID
	Version    int
	Task       *tasks.Task
	Log        *slog.Logger
	// BatchSize bounds the units a batched stage handles at once (default 500).
	BatchSize int
}

// unit is one declarative content unit moving through the stages.
type unit struct {
	seq       int64 // emit order, restored after the download pool
	dc        abi.DeclarativeContent
	key       string
	artifacts []*uuid.UUID       // stored artifact per dc.Artifacts entry, nil until known
	staged    []*artifact.Staged // downloaded per dc.Artifacts entry, until recorded
}

// Run is a started pipeline.
type Run struct {
	p        *Pipeline
	ctx      context.Context
	cancel   context.CancelCauseFunc
	in       chan *unit
	window   chan struct{} // bounds units between the query stage and the reorder
	seq      int64         // next emit sequence number (query stage only)
	wg       sync.WaitGroup
	once     sync.Once
	errMu    sync.Mutex
	err      error
	download *tasks.Progress
	assoc    *tasks.Progress

	// unrecorded holds the files downloaded and stored but not recorded
	// yet, by key, so that a failed run records them on its way out.
	unrecordedMu sync.Mutex
	unrecorded   map[string]artifact.Staged

	// late holds relations whose target was not stored when their unit was
	// saved; the save stage resolves them once every unit is in (relations.go).
	late []lateRelation
}

// Start launches the stages.
func (p *Pipeline) Start(ctx context.Context) (*Run, error) {
	if p.BatchSize <= 0 {
		p.BatchSize = 500
	}
	rctx, cancel := context.WithCancelCause(ctx)
	r := &Run{p: p, ctx: rctx, cancel: cancel, in: make(chan *unit, p.BatchSize), window: make(chan struct{}, 2*p.BatchSize),
		unrecorded: map[string]artifact.Staged{}}
	var err error
	if r.download, err = p.Task.Progress(ctx, "sync.downloading.artifacts", "Downloading Artifacts", -1); err != nil {
		return nil, err
	}
	if r.assoc, err = p.Task.Progress(ctx, "associating.content", "Associating Content", -1); err != nil {
		return nil, err
	}
	queried := make(chan *unit, p.BatchSize)
	fetched := make(chan *unit, p.BatchSize)
	ordered := make(chan *unit, p.BatchSize)
	recorded := make(chan *unit, p.BatchSize)
	r.stage(func() error { defer close(queried); return r.queryArtifacts(r.in, queried) })
	workers := max(p.Downloader.Concurrency(), 1)
	var dwg sync.WaitGroup
	for range workers {
		dwg.Add(1)
		r.stage(func() error { defer dwg.Done(); return r.downloadArtifacts(queried, fetched) })
	}
	r.stage(func() error { dwg.Wait(); close(fetched); return nil })
	r.stage(func() error { defer close(ordered); return r.reorder(fetched, ordered) })
	r.stage(func() error { defer close(recorded); return r.recordArtifacts(ordered, recorded) })
	r.stage(func() error { return r.save(recorded) })
	return r, nil
}

func (r *Run) stage(fn func() error) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := fn(); err != nil {
			r.fail(err)
		}
	}()
}

func (r *Run) fail(err error) {
	// The first failure wins: stages canceled by it report it again.
	r.errMu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.errMu.Unlock()
	r.cancel(err)
}

// Err is the first stage error.
func (r *Run) Err() error {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if r.err == nil && r.ctx.Err() != nil {
		return context.Cause(r.ctx)
	}
	return r.err
}

// Emit feeds a batch from the plugin into the stages; it blocks while they
// are busy and fails once any stage failed.
func (r *Run) Emit(ctx context.Context, batch []abi.DeclarativeContent) error {
	for _, dc := range batch {
		ti, ok := r.p.Types[dc.Type]
		if !ok {
			return fmt.Errorf("content type %s cannot be synced into this repository", dc.Type)
		}
		key, err := db.NaturalKey(dc.Fields, ti.NaturalKey)
		if err != nil {
			return fmt.Errorf("%s unit: %w", dc.Type, err)
		}
		u := &unit{dc: dc, key: key, artifacts: make([]*uuid.UUID, len(dc.Artifacts))}
		select {
		case r.in <- u:
		case <-r.ctx.Done():
			return r.Err()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Finish closes the input and waits for the stages to drain.
func (r *Run) Finish() error {
	r.once.Do(func() { close(r.in) })
	r.wg.Wait()
	if err := r.Err(); err != nil {
		r.recordLeftovers()
		return err
	}
	for _, p := range []*tasks.Progress{r.download, r.assoc} {
		if err := p.Done(r.ctx); err != nil {
			return err
		}
	}
	return nil
}

// Abort stops the stages after a first-stage failure.
func (r *Run) Abort(cause error) {
	r.cancel(cause)
	r.once.Do(func() { close(r.in) })
	r.wg.Wait()
	r.recordLeftovers()
}

// recordLeftovers records the files a failed run downloaded and stored but
// did not record: as orphan artifacts they spare a re-run the downloads, and
// orphan cleanup removes them if none comes. Files never recorded would only
// leak. Best effort: the run has failed already.
func (r *Run) recordLeftovers() {
	r.unrecordedMu.Lock()
	staged := slices.Collect(maps.Values(r.unrecorded))
	clear(r.unrecorded)
	r.unrecordedMu.Unlock()
	if len(staged) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), leftoverTimeout)
	defer cancel()
	if _, err := r.p.Artifacts.CommitStaged(ctx, staged); err != nil {
		log := r.p.Log
		if log == nil {
			log = slog.Default()
		}
		log.WarnContext(ctx, "record artifacts of a failed sync", "artifacts", len(staged), "err", err)
	}
}

// leftoverTimeout bounds recordLeftovers, which runs after a cancel.
const leftoverTimeout = time.Minute

// batch takes at least one unit from in, then whatever is ready, up to
// BatchSize; it waits a little for more so small emits still batch well.
func (r *Run) batch(in <-chan *unit) ([]*unit, bool) {
	var out []*unit
	select {
	case u, ok := <-in:
		if !ok {
			return nil, false
		}
		out = append(out, u)
	case <-r.ctx.Done():
		return nil, false
	}
	idle := time.NewTimer(20 * time.Millisecond)
	defer idle.Stop()
	for len(out) < r.p.BatchSize {
		select {
		case u, ok := <-in:
			if !ok {
				return out, true
			}
			out = append(out, u)
		case <-idle.C:
			return out, true
		case <-r.ctx.Done():
			return nil, false
		}
	}
	return out, true
}

func (r *Run) send(out chan<- *unit, u *unit) error {
	select {
	case out <- u:
		return nil
	case <-r.ctx.Done():
		return context.Cause(r.ctx)
	}
}

// queryArtifacts swaps in artifacts already stored, by sha256, a batch at a time.
func (r *Run) queryArtifacts(in <-chan *unit, out chan<- *unit) error {
	for {
		b, ok := r.batch(in)
		if !ok {
			return nil
		}
		var digests []string
		for _, u := range b {
			for _, a := range u.dc.Artifacts {
				if a.SHA256 != "" {
					digests = append(digests, a.SHA256)
				}
			}
		}
		found, err := r.p.DB.ArtifactsBySHA256(r.ctx, digests)
		if err != nil {
			return fmt.Errorf("query artifacts: %w", err)
		}
		// Units without known digests: a stored unit with the same natural
		// key is the same unit, so its downloaded artifacts serve again.
		byType := map[string][]string{}
		for _, u := range b {
			for i, a := range u.dc.Artifacts {
				if art, ok := found[a.SHA256]; ok && a.SHA256 != "" {
					id := art.ID
					u.artifacts[i] = &id
				} else if a.SHA256 == "" {
					byType[u.dc.Type] = append(byType[u.dc.Type], u.key)
				}
			}
		}
		stored := map[string]map[string]map[string]uuid.UUID{}
		for typ, keys := range byType {
			if stored[typ], err = r.p.DB.StoredArtifactsByKeys(r.ctx, typ, keys); err != nil {
				return fmt.Errorf("query stored artifacts: %w", err)
			}
		}
		for _, u := range b {
			for i, a := range u.dc.Artifacts {
				if id, ok := stored[u.dc.Type][u.key][a.RelativePath]; ok && u.artifacts[i] == nil {
					u.artifacts[i] = &id
				}
			}
			u.seq = r.seq
			r.seq++
			select {
			case r.window <- struct{}{}:
			case <-r.ctx.Done():
				return context.Cause(r.ctx)
			}
			if err := r.send(out, u); err != nil {
				return err
			}
		}
	}
}

// reorder restores emit order after the download pool, so that a unit is
// saved after the units emitted before it (relation targets among them).
// The window the query stage fills bounds how many units can wait here.
func (r *Run) reorder(in <-chan *unit, out chan<- *unit) error {
	pending := map[int64]*unit{}
	var next int64
	for {
		select {
		case u, ok := <-in:
			if !ok {
				return nil
			}
			pending[u.seq] = u
			for {
				v, ok := pending[next]
				if !ok {
					break
				}
				delete(pending, next)
				next++
				<-r.window
				if err := r.send(out, v); err != nil {
					return err
				}
			}
		case <-r.ctx.Done():
			return context.Cause(r.ctx)
		}
	}
}

// downloadArtifacts fetches the missing, non-deferred artifacts of each unit.
func (r *Run) downloadArtifacts(in <-chan *unit, out chan<- *unit) error {
	for {
		var u *unit
		select {
		case v, ok := <-in:
			if !ok {
				return nil
			}
			u = v
		case <-r.ctx.Done():
			return context.Cause(r.ctx)
		}
		for i, a := range u.dc.Artifacts {
			if u.artifacts[i] != nil || a.Deferred {
				continue
			}
			st, err := r.fetch(a)
			if err != nil {
				return err
			}
			if u.staged == nil {
				u.staged = make([]*artifact.Staged, len(u.dc.Artifacts))
			}
			u.staged[i] = &st
			if err := r.download.Increment(r.ctx, 1); err != nil {
				return err
			}
		}
		if err := r.send(out, u); err != nil {
			return err
		}
	}
}

// fetch downloads an artifact and stores it, unrecorded until recordArtifacts.
func (r *Run) fetch(a abi.DeclarativeArtifact) (artifact.Staged, error) {
	want := map[string]string{}
	for k, v := range a.Digests {
		want[k] = v
	}
	if a.SHA256 != "" {
		want["sha256"] = a.SHA256
	}
	size := a.Size
	if size == 0 {
		size = -1
	}
	path, gotSize, got, err := r.p.Downloader.Download(r.ctx, a.URL, a.Headers, size, want, r.p.TempDir)
	if err != nil {
		return artifact.Staged{}, err // names the URL, without its credentials
	}
	st, err := r.p.Artifacts.Stage(r.ctx, artifact.FromFile(path, gotSize, got))
	if err != nil {
		return artifact.Staged{}, fmt.Errorf("store %s: %w", a.URL, err)
	}
	r.unrecordedMu.Lock()
	r.unrecorded[st.Key] = st
	r.unrecordedMu.Unlock()
	return st, nil
}

// recordArtifacts records a batch's downloaded artifacts at once: one
// storage flush, then one insert (Store.CommitStaged), before any row of
// the batch can name them.
func (r *Run) recordArtifacts(in <-chan *unit, out chan<- *unit) error {
	for {
		b, ok := r.batch(in)
		if !ok {
			return r.drained()
		}
		var staged []artifact.Staged
		for _, u := range b {
			for _, st := range u.staged {
				if st != nil {
					staged = append(staged, *st)
				}
			}
		}
		arts, err := r.p.Artifacts.CommitStaged(r.ctx, staged)
		if err != nil {
			return err
		}
		r.unrecordedMu.Lock()
		for _, st := range staged {
			delete(r.unrecorded, st.Key)
		}
		r.unrecordedMu.Unlock()
		n := 0
		for _, u := range b {
			for i, st := range u.staged {
				if st != nil {
					id := arts[n].ID
					u.artifacts[i] = &id
					u.staged[i] = nil
					n++
				}
			}
			if err := r.send(out, u); err != nil {
				return err
			}
		}
	}
}

// save writes a batch's content, links and memberships.
func (r *Run) save(in <-chan *unit) error {
	for {
		b, ok := r.batch(in)
		if !ok {
			if err := r.drained(); err != nil {
				return err
			}
			return r.resolveLate()
		}
		if err := r.saveBatch(b); err != nil {
			return err
		}
	}
}

// drained reports whether save stopped because the run was canceled.
func (r *Run) drained() error {
	if r.ctx.Err() != nil {
		return context.Cause(r.ctx)
	}
	return nil
}

func (r *Run) saveBatch(b []*unit) error {
	ctx := r.ctx
	news := make([]db.NewContent, len(b))
	for i, u := range b {
		news[i] = db.NewContent{PulpType: u.dc.Type, NaturalKey: u.key, Fields: u.dc.Fields}
	}
	saved, err := r.p.DB.GetOrCreateContents(ctx, news)
	if err != nil {
		return fmt.Errorf("save content: %w", err)
	}
	var cas []db.ContentArtifact
	ids := make([]uuid.UUID, len(b))
	for i, u := range b {
		ids[i] = saved[i].ID
		for j, a := range u.dc.Artifacts {
			cas = append(cas, db.ContentArtifact{ContentID: saved[i].ID, ArtifactID: u.artifacts[j], RelativePath: a.RelativePath})
		}
	}
	if err := r.p.DB.AddContentArtifacts(ctx, cas); err != nil {
		return fmt.Errorf("save content artifacts: %w", err)
	}
	if err := r.saveRemoteArtifacts(b, ids); err != nil {
		return err
	}
	if err := r.saveRelations(b, ids); err != nil {
		return err
	}
	if err := r.p.DB.AddContent(ctx, r.p.Repository, r.p.Version, ids); err != nil {
		return fmt.Errorf("associate content: %w", err)
	}
	return r.assoc.Increment(ctx, int64(len(b)))
}

func (r *Run) saveRemoteArtifacts(b []*unit, ids []uuid.UUID) error {
	stored, err := r.p.DB.ContentArtifactsOf(r.ctx, ids)
	if err != nil {
		return err
	}
	type key struct {
		content uuid.UUID
		path    string
	}
	byKey := make(map[key]uuid.UUID, len(stored))
	for _, ca := range stored {
		byKey[key{ca.ContentID, ca.RelativePath}] = ca.ID
	}
	var ras []db.RemoteArtifact
	for i, u := range b {
		for _, a := range u.dc.Artifacts {
			if a.URL == "" {
				continue
			}
			caID, ok := byKey[key{ids[i], a.RelativePath}]
			if !ok {
				return fmt.Errorf("content artifact %s of %s not found after saving", a.RelativePath, u.dc.Type)
			}
			ra := db.RemoteArtifact{ContentArtifactID: caID, RemoteID: r.p.RemoteID, URL: a.URL, Digests: map[string]string{}, Headers: a.Headers}
			if a.Size > 0 {
				size := a.Size
				ra.Size = &size
			}
			for k, v := range a.Digests {
				ra.Digests[k] = v
			}
			if a.SHA256 != "" {
				ra.Digests["sha256"] = a.SHA256
			}
			ras = append(ras, ra)
		}
	}
	if err := r.p.DB.UpsertRemoteArtifacts(r.ctx, ras); err != nil {
		return fmt.Errorf("save remote artifacts: %w", err)
	}
	return nil
}

// saveRelations resolves relation targets by natural key: a target emitted
// earlier or already stored is linked now, one emitted later at the end.
func (r *Run) saveRelations(b []*unit, ids []uuid.UUID) error {
	type target struct{ typ, key string }
	want := map[string][]string{}
	type link struct {
		from int
		name string
		to   target
		raw  json.RawMessage // the target's key as emitted, for errors
		f    json.RawMessage
	}
	var rels []link
	for i, u := range b {
		for _, rel := range u.dc.Relations {
			ti, ok := r.p.Types[rel.To.Type]
			if !ok {
				return fmt.Errorf("relation %s of a %s unit points at type %s, which this repository cannot hold", rel.Name, u.dc.Type, rel.To.Type)
			}
			k, err := db.NaturalKey(rel.To.Key, ti.NaturalKey)
			if err != nil {
				return fmt.Errorf("relation %s of a %s unit: %w", rel.Name, u.dc.Type, err)
			}
			want[rel.To.Type] = append(want[rel.To.Type], k)
			rels = append(rels, link{i, rel.Name, target{rel.To.Type, k}, rel.To.Key, rel.Fields})
		}
	}
	if len(rels) == 0 {
		return nil
	}
	found := map[target]uuid.UUID{}
	for typ, keys := range want {
		cs, err := r.p.DB.ContentByKeys(r.ctx, typ, keys, nil)
		if err != nil {
			return err
		}
		for _, c := range cs {
			found[target{typ, c.NaturalKey}] = c.ID
		}
	}
	out := make([]db.Relation, 0, len(rels))
	for _, rel := range rels {
		to, ok := found[rel.to]
		if !ok {
			u := b[rel.from]
			r.late = append(r.late, lateRelation{from: ids[rel.from], fromType: u.dc.Type, fromKey: r.keyFields(u),
				name: rel.name, toType: rel.to.typ, toKey: rel.to.key, raw: rel.raw, fields: rel.f})
			continue
		}
		out = append(out, db.Relation{From: ids[rel.from], Name: rel.name, To: to, Fields: rel.f})
	}
	return r.p.DB.AddRelations(r.ctx, out)
}
