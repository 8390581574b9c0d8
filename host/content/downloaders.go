package content

import (
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/download"
)

// downloaders keeps one downloader per remote, so on-demand fetches reuse
// its connections and share its concurrency and rate limits; a remote
// edited since gets a new one.
type downloaders struct {
	build func(db.Remote) (*download.Downloader, error)

	mu sync.Mutex
	m  map[uuid.UUID]remoteDownloader
}

type remoteDownloader struct {
	updated time.Time
	d       *download.Downloader
}

func (x *downloaders) get(r db.Remote) (*download.Downloader, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if e, ok := x.m[r.ID]; ok && e.updated.Equal(r.UpdatedAt) {
		return e.d, nil
	}
	d, err := x.build(r)
	if err != nil {
		return nil, fmt.Errorf("downloader of remote %s: %w", r.Name, err)
	}
	if old, ok := x.m[r.ID]; ok {
		old.d.Close() // its downloads in flight go on; only idle connections go
	}
	if x.m == nil {
		x.m = map[uuid.UUID]remoteDownloader{}
	}
	x.m[r.ID] = remoteDownloader{updated: r.UpdatedAt, d: d}
	return d, nil
}
