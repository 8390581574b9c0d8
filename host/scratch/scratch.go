// Package scratch gives each process its own working directory under a shared root
// (<data-dir>/tmp) and removes the directories of processes that died without cleaning up
// (kill -9, a crash, power loss) while their files were half written.
//
// A process's directory proc-XXXX sits next to a lock file proc-XXXX.lock that the process
// holds locked (flock) for its life; the kernel drops the lock when the process dies, however
// it dies. Sweep removes the directories whose lock it can take, so it never touches the files
// of a live process, whatever their age (a long sync keeps its metadata for hours).
package scratch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Dir is a process's working directory.
type Dir struct {
	Path string
	lock *os.File
}

const prefix = "proc-"

// legacyAge is how old a loose temporary file at the root must be before Sweep removes it:
// such files come from versions that wrote there directly, or from tools run by hand.
const legacyAge = 24 * time.Hour

// legacyPrefixes name the temporary files and directories pulpo once wrote at the root.
var legacyPrefixes = []string{"download-", "artifact-", "content-", "pulpo-sync-", "pulpo-publish-", "pulpo-upload-", "pulpo-empty-"}

// Claim creates and locks a new working directory under root.
func Claim(root string) (*Dir, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("scratch: %w", err)
	}
	for range 10 {
		f, err := os.CreateTemp(root, prefix+"*.lock")
		if err != nil {
			return nil, fmt.Errorf("scratch: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue // a sweeper holds it, about to remove it
		}
		// A sweeper may have taken the lock between create and flock and removed the file;
		// a lock on an unlinked file protects nothing.
		if fi, err := os.Stat(f.Name()); err != nil || !sameFile(f, fi) {
			f.Close()
			continue
		}
		dir := strings.TrimSuffix(f.Name(), ".lock")
		if err := os.Mkdir(dir, 0o755); err != nil {
			os.Remove(f.Name())
			f.Close()
			return nil, fmt.Errorf("scratch: %w", err)
		}
		return &Dir{Path: dir, lock: f}, nil
	}
	return nil, errors.New("scratch: could not claim a working directory")
}

func sameFile(f *os.File, fi fs.FileInfo) bool {
	own, err := f.Stat()
	return err == nil && os.SameFile(own, fi)
}

// Release removes the directory and its lock.
func (d *Dir) Release() error {
	err := os.RemoveAll(d.Path)
	if rerr := os.Remove(d.lock.Name()); err == nil {
		err = rerr
	}
	if cerr := d.lock.Close(); err == nil {
		err = cerr
	}
	return err
}

// Sweep removes, under root, the working directories of dead processes and loose
// temporary files older than a day, and returns what it removed.
func Sweep(root string) ([]string, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("scratch sweep: %w", err)
	}
	locks := map[string]bool{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) && strings.HasSuffix(e.Name(), ".lock") {
			locks[strings.TrimSuffix(e.Name(), ".lock")] = true
		}
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(root, name)
		switch {
		case strings.HasPrefix(name, prefix) && strings.HasSuffix(name, ".lock"):
			ok, err := removeIfDead(path)
			if err != nil {
				errs = append(errs, err)
			}
			if ok {
				removed = append(removed, strings.TrimSuffix(path, ".lock"))
			}
		case strings.HasPrefix(name, prefix) && e.IsDir() && !locks[name]:
			// Its owner died while releasing it, after removing the lock. A directory
			// claimed right now has its lock already (the lock comes first).
			if err := os.RemoveAll(path); err != nil {
				errs = append(errs, err)
			} else {
				removed = append(removed, path)
			}
		case hasLegacyPrefix(name):
			if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > legacyAge {
				if err := os.RemoveAll(path); err != nil {
					errs = append(errs, err)
				} else {
					removed = append(removed, path)
				}
			}
		}
	}
	return removed, errors.Join(errs...)
}

// removeIfDead takes the lock at path if no process holds it and then removes its
// directory and the lock file.
func removeIfDead(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // released meanwhile
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return false, nil // alive
	}
	if err := os.RemoveAll(strings.TrimSuffix(path, ".lock")); err != nil {
		return false, err
	}
	return true, os.Remove(path)
}

func hasLegacyPrefix(name string) bool {
	for _, p := range legacyPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
