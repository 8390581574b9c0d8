package download

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// pacer spaces requests 1/rate apart, with no burst. (pulpcore's
// asyncio-throttle admits rate requests per one-second window, which allows a
// burst of rate; even spacing is gentler on upstreams and equal over a second.)
// A nil pacer admits everything.
type pacer struct {
	interval time.Duration
	mu       sync.Mutex
	next     time.Time
}

func newPacer(perSecond int) *pacer {
	if perSecond <= 0 {
		return nil
	}
	return &pacer{interval: time.Second / time.Duration(perSecond)}
}

// wait blocks until the caller's slot; a slot given up by a canceled caller
// is not reused.
func (p *pacer) wait(ctx context.Context) error {
	if p == nil {
		return ctx.Err()
	}
	p.mu.Lock()
	now := time.Now()
	slot := p.next
	if slot.Before(now) {
		slot = now
	}
	p.next = slot.Add(p.interval)
	p.mu.Unlock()
	return sleep(ctx, slot.Sub(now))
}

// backoff is exponential with equal jitter: before retry n (1-based) it waits
// between d/2 and d, where d = base·2^(n-1) capped at limit.
type backoff struct {
	base, limit time.Duration
}

func (b backoff) delay(retry int) time.Duration {
	d := b.base
	for i := 1; i < retry && d < b.limit; i++ {
		d *= 2
	}
	d = min(d, b.limit)
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1) //nolint:gosec // jitter, not security
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
