package registry

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pulpo/pulpo/host/db"
)

// caches holds the registry's resolutions in memory. Every change that can alter one
// (a new version, a distribution, a pending unit going away) notifies
// db.ChannelContentCache at commit, from whichever process made it; each notification
// empties every cache. Answers are cached only while the LISTEN is known to be in place,
// and for at most ttl, so a lost connection cannot keep a stale answer for long. Writes
// made by this process flush at once (they do not wait for their notification), so a
// client reading its own push never sees the state before it.
type caches struct {
	ttl       time.Duration
	listening atomic.Bool

	mu  sync.RWMutex
	gen uint64
	m   map[any]cached
}

type cached struct {
	v       any
	expires time.Time
}

// maxCached empties a full cache: simpler than LRU, and rare.
const maxCached = 100_000

func newCaches(ttl time.Duration) *caches {
	return &caches{ttl: ttl, m: map[any]cached{}}
}

// get returns the fresh value of k, or the generation to hand to put.
func (c *caches) get(k any) (any, uint64, bool) {
	c.mu.RLock()
	e, ok := c.m[k]
	gen := c.gen
	c.mu.RUnlock()
	if ok && time.Now().Before(e.expires) {
		return e.v, gen, true
	}
	return nil, gen, false
}

// put stores v unless the caches were flushed since gen (the value may predate the
// change that flushed them) or nothing is listening.
func (c *caches) put(k, v any, gen uint64) {
	if !c.listening.Load() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.m) >= maxCached {
		c.m = map[any]cached{}
	}
	c.m[k] = cached{v: v, expires: time.Now().Add(c.ttl)}
}

func (c *caches) flush() {
	c.mu.Lock()
	c.gen++
	c.m = map[any]cached{}
	c.mu.Unlock()
}

// load returns the cached value of k or computes it; keep decides whether it is cached.
func load[V any](ctx context.Context, c *caches, k any, fn func(context.Context) (V, error), keep func(V) bool) (V, error) {
	cv, gen, ok := c.get(k)
	if ok {
		return cv.(V), nil
	}
	v, err := fn(ctx)
	if err == nil && (keep == nil || keep(v)) {
		c.put(k, v, gen)
	}
	return v, err
}

// listen flushes at every notification until ctx ends. Caching is on from each
// (re)established LISTEN, which db.Listen reports with an empty notification after
// LISTEN took effect. A connection lost unnoticed keeps answers for at most ttl.
func (c *caches) listen(ctx context.Context, d *db.DB) error {
	defer c.listening.Store(false)
	return d.Listen(ctx, []string{db.ChannelContentCache}, func(n db.Notification) {
		c.flush()
		if n.Channel == "" {
			c.listening.Store(true)
		}
	})
}
