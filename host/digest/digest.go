// Package digest computes the checksums Pulp records for artifacts, all in
// one pass over the bytes.
package digest

import (
	"crypto/md5"  //nolint:gosec // recorded only when allowed by configuration
	"crypto/sha1" //nolint:gosec // idem
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"slices"
	"sync"
)

// Names lists every digest Pulp knows, weakest first.
var Names = []string{"md5", "sha1", "sha224", "sha256", "sha384", "sha512"}

// DefaultAllowed is Pulp's ALLOWED_CONTENT_CHECKSUMS default: md5 and sha1
// are not computed or trusted.
var DefaultAllowed = []string{"sha224", "sha256", "sha384", "sha512"}

func newHash(name string) (hash.Hash, error) {
	switch name {
	case "md5":
		return md5.New(), nil //nolint:gosec
	case "sha1":
		return sha1.New(), nil //nolint:gosec
	case "sha224":
		return sha256.New224(), nil
	case "sha256":
		return sha256.New(), nil
	case "sha384":
		return sha512.New384(), nil
	case "sha512":
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("unknown digest %q", name)
}

// Hasher is an io.Writer computing several digests and counting bytes.
type Hasher struct {
	names []string
	hs    []hash.Hash
	n     int64
}

// New returns a hasher for the named digests; sha256 is always included.
func New(names ...string) (*Hasher, error) {
	if !slices.Contains(names, "sha256") {
		names = append(slices.Clone(names), "sha256")
	}
	h := &Hasher{names: names}
	for _, n := range names {
		hh, err := newHash(n)
		if err != nil {
			return nil, err
		}
		h.hs = append(h.hs, hh)
	}
	return h, nil
}

// parallelMin is the write size from which the digests are computed in parallel, one
// goroutine each: computing sha224, sha256, sha384 and sha512 one after the other runs at a
// sixth of sha256's speed, while a goroutine per digest costs about a microsecond per write.
// Small writes (most artifacts are small) stay on the caller's goroutine.
const parallelMin = 64 << 10

// Write feeds every digest; a large p is hashed by every digest at once.
func (h *Hasher) Write(p []byte) (int, error) {
	if len(p) >= parallelMin && len(h.hs) > 1 {
		var wg sync.WaitGroup
		for _, hh := range h.hs[1:] {
			wg.Go(func() { hh.Write(p) })
		}
		h.hs[0].Write(p)
		wg.Wait() // p is the caller's again once Write returns
	} else {
		for _, hh := range h.hs {
			hh.Write(p)
		}
	}
	h.n += int64(len(p))
	return len(p), nil
}

// Size is the number of bytes written.
func (h *Hasher) Size() int64 { return h.n }

// Sums returns each digest as lowercase hex, by name.
func (h *Hasher) Sums() map[string]string {
	out := make(map[string]string, len(h.hs))
	for i, hh := range h.hs {
		out[h.names[i]] = hex.EncodeToString(hh.Sum(nil))
	}
	return out
}

// Valid tells whether s looks like a hex digest of the named algorithm.
func Valid(name, s string) bool {
	want := map[string]int{"md5": 32, "sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128}[name]
	if want == 0 || len(s) != want {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// overlapMin is the write size from which Tee writes and hashes at once.
const overlapMin = 64 << 10

// Tee writes p to w and to h. A large p is written on another goroutine
// while h hashes it (the write, a copy into the page cache or a socket,
// then overlaps the hashing); both only read p. h's errors are ignored, as
// hashes do not fail.
func Tee(w, h io.Writer, p []byte) (int, error) {
	var n int
	var err error
	if len(p) >= overlapMin {
		done := make(chan struct{})
		go func() { n, err = w.Write(p); close(done) }()
		_, _ = h.Write(p)
		<-done
	} else {
		_, _ = h.Write(p)
		n, err = w.Write(p)
	}
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return n, err
}
