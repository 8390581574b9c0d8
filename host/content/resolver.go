package content

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/db"
)

// Cache sizes: entries beyond these empty the cache (see ttlMap).
const (
	maxCachedPaths   = 100_000
	maxCachedLists   = 1_000
	maxListedEntries = 10_000 // bigger listings are computed per request
)

// resolver answers, through its caches, what distributions exist, what each
// serves, and what a path in that resolves to.
type resolver struct {
	db        *db.DB
	downloads DownloadChecker // core.rbac guards
	fromPub   map[string]bool
	log       *slog.Logger

	dists   *ttlMap[struct{}, *distTable]
	targets *ttlMap[uuid.UUID, target]
	paths   *ttlMap[pathKey, pathResult]
	lists   *ttlMap[pathKey, []db.DirEntry]

	// listening is true while LISTEN is known to be in place: only then
	// may answers be cached, or a change could go unnoticed until the TTL.
	listening atomic.Bool
	mu        sync.Mutex
	pings     map[string]chan struct{} // by payload, see sync
}

// target is what a distribution serves; ok is false when it serves nothing.
type target struct {
	db.ContentTarget
	ok bool
}

// key identifies the served content; paths in it are immutable apart from
// on-demand artifacts arriving.
func (t target) key(path string) pathKey {
	k := pathKey{version: t.VersionID, passThrough: t.PassThrough, path: path}
	if t.PublicationID != nil {
		k.publication = *t.PublicationID
	}
	return k
}

type pathKey struct {
	publication, version uuid.UUID
	passThrough          bool
	path                 string
}

type pathResult struct {
	file  db.ContentFile
	found bool
	isDir bool // no file, but files below path + "/"
}

func newResolver(d *db.DB, fromPub map[string]bool, ttl time.Duration, log *slog.Logger) *resolver {
	r := &resolver{db: d, fromPub: fromPub, log: log, pings: map[string]chan struct{}{}}
	r.dists = newTTLMap[struct{}, *distTable](ttl, 1, &r.listening)
	r.targets = newTTLMap[uuid.UUID, target](ttl, maxCachedPaths, &r.listening)
	r.paths = newTTLMap[pathKey, pathResult](ttl, maxCachedPaths, &r.listening)
	r.lists = newTTLMap[pathKey, []db.DirEntry](ttl, maxCachedLists, &r.listening)
	return r
}

// flush forgets everything: a notification, a reconnect.
func (r *resolver) flush() {
	r.dists.flush()
	r.targets.flush()
	r.paths.flush()
	r.lists.flush()
}

// pingPrefix marks the notifications a content app sends itself to learn
// that its LISTEN is in place; other apps just flush on them.
const pingPrefix = "ping:"

// listen flushes the caches at every notification until ctx ends. Caching
// starts once a notification of its own has come back, and stops from a lost
// connection until the same holds again on the new one.
func (r *resolver) listen(ctx context.Context) {
	var armed atomic.Uint64 // bumped at each (re)connection
	rearm := make(chan struct{}, 1)
	arm := func() {
		r.listening.Store(false)
		armed.Add(1)
		select {
		case rearm <- struct{}{}:
		default:
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for {
			select {
			case <-rearm:
			case <-ctx.Done():
				return
			}
			gen := armed.Load()
			// A reconnection during the ping calls for another ping.
			if r.sync(ctx) == nil && armed.Load() == gen {
				r.listening.Store(true)
			}
		}
	})
	arm()
	err := r.db.Listen(ctx, []string{db.ChannelContentCache}, func(n db.Notification) {
		r.flush()
		if n.Channel == "" { // (re)connected: changes may have been missed
			arm()
			return
		}
		if strings.HasPrefix(n.Payload, pingPrefix) {
			r.mu.Lock()
			if ch, ok := r.pings[n.Payload]; ok {
				close(ch)
				delete(r.pings, n.Payload)
			}
			r.mu.Unlock()
		}
	})
	if err != nil && ctx.Err() == nil {
		r.log.ErrorContext(ctx, "content cache listener stopped", "err", err)
	}
}

// sync returns once every change committed before the call has flushed the
// caches: it notifies itself and waits for that notification, which
// Postgres delivers after the earlier ones. It repeats the notification
// until the listener has it, as the LISTEN may not be in place yet.
func (r *resolver) sync(ctx context.Context) error {
	b := make([]byte, 8)
	rand.Read(b)
	token := pingPrefix + hex.EncodeToString(b)
	ch := make(chan struct{})
	r.mu.Lock()
	r.pings[token] = ch
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.pings, token)
		r.mu.Unlock()
	}()
	for {
		if err := r.db.Notify(ctx, db.ChannelContentCache, token); err != nil && ctx.Err() == nil {
			r.log.DebugContext(ctx, "content cache ping", "err", err) // the listener reports the outage
		}
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (r *resolver) distributions(ctx context.Context) (*distTable, error) {
	return r.dists.load(ctx, struct{}{}, func(ctx context.Context) (*distTable, error) {
		rows, err := r.db.ContentDistributions(ctx)
		if err != nil {
			return nil, fmt.Errorf("load distributions: %w", err)
		}
		return newDistTable(rows, r.fromPub, r.downloads), nil
	}, nil)
}

func (r *resolver) target(ctx context.Context, d *dist) (target, error) {
	return r.targets.load(ctx, d.ID, func(ctx context.Context) (target, error) {
		t, err := r.db.ResolveContentTarget(ctx, d.RepositoryID, d.RepositoryVersionID, d.PublicationID, d.fromPublication)
		if errors.Is(err, db.ErrNotFound) {
			return target{}, nil
		}
		if err != nil {
			return target{}, fmt.Errorf("resolve distribution %s: %w", d.BasePath, err)
		}
		return target{ContentTarget: t, ok: true}, nil
	}, nil)
}

func (r *resolver) path(ctx context.Context, t target, path string) (pathResult, error) {
	return r.paths.load(ctx, t.key(path), func(ctx context.Context) (pathResult, error) {
		f, isDir, err := r.db.ResolveContentPath(ctx, t.ContentTarget, path)
		if errors.Is(err, db.ErrNotFound) {
			return pathResult{}, nil
		}
		if err != nil {
			return pathResult{}, fmt.Errorf("resolve %s: %w", path, err)
		}
		return pathResult{file: f, found: !isDir, isDir: isDir}, nil
	}, nil)
}

func (r *resolver) list(ctx context.Context, t target, dir string) ([]db.DirEntry, error) {
	return r.lists.load(ctx, t.key(dir), func(ctx context.Context) ([]db.DirEntry, error) {
		es, err := r.db.ListContentDir(ctx, t.ContentTarget, dir)
		if err != nil {
			return nil, fmt.Errorf("list %q: %w", dir, err)
		}
		return es, nil
	}, func(es []db.DirEntry) bool { return len(es) <= maxListedEntries })
}
