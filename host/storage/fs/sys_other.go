//go:build !linux

package fs

import (
	"errors"
	"os"
)

// syncFS is Linux-only; elsewhere Sync fsyncs each object.
func syncFS(*os.File) error { return errors.ErrUnsupported }

// renameNoReplace is Linux-only; elsewhere AdoptNoSync links and unlinks.
func renameNoReplace(string, string) error { return errors.ErrUnsupported }
