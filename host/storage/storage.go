// Package storage defines how the host keeps artifact bytes: the [Driver] interface every
// backend implements, the optional [Adopter] and [BatchAdopter] capabilities, and the key
// layout ([ArtifactKey], [ValidKey]).
//
// Drivers live in sub-packages: storage/fs stores objects as files under a root directory;
// an S3 driver is planned. Every driver must pass the conformance suite in
// storage/storagetest, which pins down the behaviour documented here.
//
// Keys are slash-separated, relative and clean (see [ValidKey]); a driver never turns a key
// into a location outside its own namespace.
package storage

import (
	"context"
	"errors"
	"io"
	"time"
)

var (
	// ErrNotFound is wrapped by the error Open, Stat and Delete return for a missing key.
	ErrNotFound = errors.New("storage: not found")
	// ErrInvalidKey is wrapped by the error every method returns for a key or prefix that
	// [ValidKey] or [ValidPrefix] rejects.
	ErrInvalidKey = errors.New("storage: invalid key")
)

// Driver stores opaque objects by key. It is safe for concurrent use.
//
// The interface has several implementations and a conformance suite (storagetest.Run); add
// a method only together with a suite test for it.
type Driver interface {
	// Put streams r into key, computing the size and sha256 while writing. The write is
	// atomic: readers see the previous object or the complete new one, never a partial
	// object. On any error (including a cancelled ctx or an error from r) the previous
	// object, if any, is left as it was and no temporary data remains. The returned Info
	// has every field set.
	Put(ctx context.Context, key string, r io.Reader) (Info, error)
	// Open returns a reader of the object at key. A Reader opened before the object is
	// replaced reads the old bytes or the new bytes in full, never a mix.
	Open(ctx context.Context, key string) (Reader, error)
	// Stat describes the object at key. Info.SHA256 may be empty.
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes the object at key.
	Delete(ctx context.Context, key string) error
	// List calls fn for every object whose key starts with prefix ("" lists everything),
	// in no particular order; "a/b" matches "a/bc/d" too, so end a directory prefix with
	// a slash. Objects put or deleted during the listing may or may not be reported.
	// An error from fn stops the listing and is returned wrapped. Info.SHA256 may be empty.
	List(ctx context.Context, prefix string, fn func(Info) error) error
}

// Reader reads one object. It seeks, for HTTP Range requests, and knows the object's size
// and modification time, for Content-Length and Last-Modified.
//
// A driver's Reader may offer more through its concrete type: the fs driver's also
// implements syscall.Conn, so io.Copy and http.ServeContent send it with sendfile(2).
type Reader interface {
	io.ReadSeekCloser
	// Size is the object's length in bytes.
	Size() int64
	// ModTime is when the object was written.
	ModTime() time.Time
}

// Info describes a stored object.
type Info struct {
	Key  string
	Size int64
	// SHA256 is the lowercase hex sha256 of the bytes. Put always sets it; Stat, List
	// and Adopter.Adopt may leave it empty.
	SHA256  string
	ModTime time.Time
}

// Adopter is an optional Driver capability: moving a file that is already on local disk
// into the store without copying it through an io.Reader. Downloads are written to a
// working directory and adopted, so their bytes are written once. Check for it with a type
// assertion and fall back to Put.
type Adopter interface {
	// Adopt moves the regular file at localPath to key, as atomically as Put, and removes
	// localPath on success. On error localPath is left in place and key is unchanged.
	// The caller has already hashed the file, so Info.SHA256 is left empty.
	Adopt(ctx context.Context, key, localPath string) (Info, error)
}

// BatchAdopter is an optional Driver capability for storing many files quickly: it adopts
// them without waiting for each to reach stable storage, then makes a whole batch durable
// at once, which costs one flush instead of one per file. A sync adopts its downloads this
// way and records them in the database only after Sync returned, so no database row ever
// names an object that a crash could lose. Check for it with a type assertion and fall back
// to [Adopter].
type BatchAdopter interface {
	Adopter
	// AdoptNoSync is Adopt, except that a new object need not survive a crash (power loss,
	// kernel panic) until Sync returned for its key: after one it may be missing, empty
	// or incomplete. Readers of the running system see it complete at once, as with Adopt.
	// An object already at key is replaced only as durably as Adopt replaces it, so an
	// object that was durable never stops being so.
	AdoptNoSync(ctx context.Context, key, localPath string) (Info, error)
	// Sync makes the objects at keys durable, with the names that lead to them: once it
	// returns nil they survive a crash. A key whose object is already durable is allowed;
	// a key with no object gives an error wrapping [ErrNotFound]. Sync may flush more than
	// keys (the fs driver flushes its whole filesystem for a large batch).
	Sync(ctx context.Context, keys []string) error
}
