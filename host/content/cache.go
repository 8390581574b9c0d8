package content

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// ttlMap is one cache of the content app. Entries live until ttl passes or
// the map is flushed. A value computed from the database is stored only if
// no flush happened since its computation began (the generation get
// returned), so a notification can never be overtaken by the stale answer of
// a query that started before it.
type ttlMap[K comparable, V any] struct {
	ttl     time.Duration
	max     int          // a full map is emptied: simpler than LRU, and rare
	enabled *atomic.Bool // put stores nothing while false

	mu  sync.RWMutex
	gen uint64
	m   map[K]ttlEntry[V]

	calls group[genKey[K], V]
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time
}

type genKey[K comparable] struct {
	k   K
	gen uint64
}

func newTTLMap[K comparable, V any](ttl time.Duration, max int, enabled *atomic.Bool) *ttlMap[K, V] {
	return &ttlMap[K, V]{ttl: ttl, max: max, enabled: enabled, m: map[K]ttlEntry[V]{}}
}

// get returns the fresh value of k, or the generation to pass to put.
func (c *ttlMap[K, V]) get(k K) (v V, gen uint64, ok bool) {
	c.mu.RLock()
	e, found := c.m[k]
	gen = c.gen
	c.mu.RUnlock()
	if found && time.Now().Before(e.expires) {
		return e.v, gen, true
	}
	return v, gen, false
}

// put stores v unless the map was flushed after gen.
func (c *ttlMap[K, V]) put(k K, v V, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen || !c.enabled.Load() {
		return
	}
	if len(c.m) >= c.max {
		c.m = map[K]ttlEntry[V]{}
	}
	c.m[k] = ttlEntry[V]{v: v, expires: time.Now().Add(c.ttl)}
}

func (c *ttlMap[K, V]) flush() {
	c.mu.Lock()
	c.gen++
	c.m = map[K]ttlEntry[V]{}
	c.mu.Unlock()
}

// queryTimeout bounds a shared lookup, which runs detached from the request
// that started it since other requests wait for its answer.
const queryTimeout = 30 * time.Second

// load returns the cached value of k or computes it with fn, once for all
// concurrent callers of the same generation, so a burst of requests for one
// uncached path (a 404 storm, a popular file after a flush) costs one query.
// keep decides whether a computed value is cached.
func (c *ttlMap[K, V]) load(ctx context.Context, k K, fn func(context.Context) (V, error), keep func(V) bool) (V, error) {
	v, gen, ok := c.get(k)
	if ok {
		return v, nil
	}
	return c.calls.do(ctx, genKey[K]{k, gen}, func() (V, error) {
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), queryTimeout)
		defer cancel()
		v, err := fn(qctx)
		if err == nil && (keep == nil || keep(v)) {
			c.put(k, v, gen)
		}
		return v, err
	})
}

// group runs one computation per key at a time and shares its result with
// the callers that ask meanwhile.
type group[K comparable, V any] struct {
	mu    sync.Mutex
	calls map[K]*call[V]
}

type call[V any] struct {
	done chan struct{}
	v    V
	err  error
}

// do waits for the key's running computation or starts fn; a caller whose
// ctx ends stops waiting, the computation goes on for the others.
func (g *group[K, V]) do(ctx context.Context, k K, fn func() (V, error)) (V, error) {
	g.mu.Lock()
	c, ok := g.calls[k]
	if !ok {
		if g.calls == nil {
			g.calls = map[K]*call[V]{}
		}
		c = &call[V]{done: make(chan struct{})}
		g.calls[k] = c
		go func() {
			defer func() {
				g.mu.Lock()
				delete(g.calls, k)
				g.mu.Unlock()
				close(c.done)
			}()
			c.v, c.err = fn()
		}()
	}
	g.mu.Unlock()
	select {
	case <-c.done:
		return c.v, c.err
	case <-ctx.Done():
		var zero V
		return zero, context.Cause(ctx)
	}
}
