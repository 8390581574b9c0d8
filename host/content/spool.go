package content

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/pulpo/pulpo/host/db"
)

// flightState is a snapshot of a flight for one of its readers.
type flightState struct {
	written  int64
	size     int64 // expected total, -1 unknown
	sha256   string
	verified bool
	done     bool
	err      error
	stored   *db.Artifact
	changed  <-chan struct{}
}

// failed reports a flight that ended with neither verified bytes nor an
// artifact.
func (s flightState) failed() bool { return s.done && !s.verified && s.stored == nil }

func (fl *flight) state() flightState {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return flightState{written: fl.written, size: fl.size, sha256: fl.sha256, verified: fl.verified,
		done: fl.done, err: fl.err, stored: fl.stored, changed: fl.changed}
}

// waitFor blocks until cond holds for the flight's state or ctx ends.
func (fl *flight) waitFor(ctx context.Context, cond func(flightState) bool) (flightState, error) {
	for {
		s := fl.state()
		if cond(s) {
			return s, nil
		}
		select {
		case <-s.changed:
		case <-ctx.Done():
			return s, context.Cause(ctx)
		}
	}
}

// started: bytes arrived, or the flight ended (an artifact, or an error).
func started(s flightState) bool { return s.written > 0 || s.done || s.stored != nil }

// reaches returns a condition true once the file holds byte off, or the
// flight ended.
func reaches(off int64) func(flightState) bool {
	return func(s flightState) bool { return s.written > off || s.done }
}

func finished(s flightState) bool { return s.done }

var bufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// copyTo writes bytes [off, end) of the download to w as they arrive; end
// below zero means to the end of the download. Until the download is
// verified the last byte of the expected size is held back, and with an
// unknown size copyTo returns only after verification: a client never
// receives a complete response of unverified bytes. A failed download is an
// error, whatever was sent.
func (fl *flight) copyTo(ctx context.Context, w io.Writer, off, end int64) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		s := fl.state()
		if s.failed() {
			return fmt.Errorf("download failed after %d bytes: %w", s.written, errOr(s.err))
		}
		limit := s.written
		if end >= 0 {
			limit = min(limit, end)
		}
		if !s.verified && s.size > 0 && limit >= s.size {
			limit = s.size - 1
		}
		if off < limit {
			n, err := fl.file.ReadAt(buf[:min(int64(len(buf)), limit-off)], off)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return werr
				}
				off += int64(n)
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("read spool: %w", err)
			}
			continue
		}
		if end >= 0 && off >= end || end < 0 && s.verified && off >= s.written {
			return nil
		}
		if s.done {
			return fmt.Errorf("download ended at %d bytes, before byte %d", s.written, end)
		}
		select {
		case <-s.changed:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

func errOr(err error) error {
	if err == nil {
		return errors.New("download failed")
	}
	return err
}
