package health

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/pulpo/pulpo/host/storage"
)

// Pinger reaches the database; *db.DB implements it.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Database fails while the database does not answer.
func Database(p Pinger) Check {
	return func(ctx context.Context) error {
		if err := p.Ping(ctx); err != nil {
			return errors.New("cannot reach the database")
		}
		return nil
	}
}

// Migrations fails while pending lists migrations the database lacks (a newer
// binary started before `pulpo migrate`) or cannot be asked.
func Migrations(pending func(ctx context.Context) ([]string, error)) Check {
	return func(ctx context.Context) error {
		names, err := pending(ctx)
		if err != nil {
			return errors.New("cannot read the applied migrations")
		}
		if len(names) > 0 {
			return fmt.Errorf("%d migrations not applied: %s", len(names), strings.Join(names, ", "))
		}
		return nil
	}
}

// Storage fails when a small object cannot be written and removed under
// health/: a full disk, a read-only mount, lost credentials.
func Storage(d storage.Driver) Check {
	return func(ctx context.Context) error {
		var b [8]byte
		rand.Read(b[:]) //nolint:errcheck // never fails
		key := "health/probe-" + hex.EncodeToString(b[:])
		if _, err := d.Put(ctx, key, strings.NewReader("ok")); err != nil {
			return errors.New("storage is not writable")
		}
		if err := d.Delete(ctx, key); err != nil {
			return errors.New("storage refused to delete its probe object")
		}
		return nil
	}
}

// Plugins fails when no plugin is loaded: the process could serve no
// content type.
func Plugins(count func() int) Check {
	return func(context.Context) error {
		if count() == 0 {
			return errors.New("no plugins loaded")
		}
		return nil
	}
}
