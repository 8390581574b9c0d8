package pgcluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// account is the OS user the server runs as: the current user, or the
// postgres system user when the process is root (initdb and postgres refuse
// to run as root).
type account struct {
	name   string
	uid    int
	gid    int
	groups []int               // supplementary groups, for the traversal check
	home   string              // set when switching users
	cred   *syscall.Credential // nil: run as the current user
}

func currentAccount() (account, error) {
	uid := os.Geteuid()
	if uid != 0 {
		a := account{uid: uid, gid: os.Getegid(), name: strconv.Itoa(uid)}
		if u, err := user.Current(); err == nil {
			a.name = u.Username
		}
		return a, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return account{}, fmt.Errorf("pgcluster: running as root, the cluster must belong to the postgres system user, which was not found (%v); install the server with apt-get install -y postgresql, which creates it, or run as a non-root user", err)
	}
	a := account{name: u.Username, home: u.HomeDir}
	if a.uid, err = strconv.Atoi(u.Uid); err != nil {
		return account{}, fmt.Errorf("pgcluster: postgres uid %q: %w", u.Uid, err)
	}
	if a.gid, err = strconv.Atoi(u.Gid); err != nil {
		return account{}, fmt.Errorf("pgcluster: postgres gid %q: %w", u.Gid, err)
	}
	gids, _ := u.GroupIds()
	groups := make([]uint32, 0, len(gids))
	for _, g := range gids {
		if n, err := strconv.Atoi(g); err == nil {
			a.groups = append(a.groups, n)
			groups = append(groups, uint32(n))
		}
	}
	a.cred = &syscall.Credential{Uid: uint32(a.uid), Gid: uint32(a.gid), Groups: groups}
	return a, nil
}

// run runs a PostgreSQL program as the account in directory dir and returns
// its combined output. PG* variables are dropped from the environment so
// that a PGDATA or PGPORT meant for another server cannot leak in.
func (a account) run(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || (a.cred != nil && (strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "USER=") || strings.HasPrefix(kv, "LOGNAME="))) {
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	if a.cred != nil {
		cmd.Env = append(cmd.Env, "HOME="+a.home, "USER="+a.name, "LOGNAME="+a.name)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: a.cred}
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	// pg_ctl start hands the server its log file as stdout and stderr, so the
	// server should not hold our pipe; WaitDelay guards against it anyway.
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if err != nil && a.cred != nil {
		err = fmt.Errorf("%w (as user %s)", err, a.name)
	}
	return out.Bytes(), err
}

// chown gives path to the account when switching users.
func (a account) chown(path string) error {
	if a.cred == nil {
		return nil
	}
	return os.Lchown(path, a.uid, a.gid)
}

// writeFile writes a file that the server reads, owned by the account.
func (a account) writeFile(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	return a.chown(path)
}

// touch creates path if missing, owned by the account.
func (a account) touch(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	return a.chown(path)
}

// mkdirPrivate makes dir a 0700 directory owned by the account. An existing
// dir must be a real directory owned by the account (it may sit in /tmp).
func (a account) mkdirPrivate(dir string) error {
	if err := os.Mkdir(dir, 0o700); err == nil {
		return a.chown(dir)
	} else if !errors.Is(err, os.ErrExist) {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	uid, ok := ownerOf(fi)
	if !fi.IsDir() || (ok && uid != a.uid) {
		return fmt.Errorf("%s exists but is not a directory owned by %s (uid %d)", dir, a.name, a.uid)
	}
	if fi.Mode().Perm() != 0o700 {
		return os.Chmod(dir, 0o700)
	}
	return nil
}

// checkTraversable fails, when switching users, if the account cannot reach
// dir: every existing ancestor needs the search (x) permission for it.
func (a account) checkTraversable(dir string) error {
	if a.cred == nil {
		return nil
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err == nil && !a.canSearch(fi) {
			return fmt.Errorf("pgcluster: PostgreSQL runs as the %s user (the process is root), which cannot reach %s: %s is mode %v and owned by uid %d; choose a data directory outside it (for example --data-dir /var/lib/pulpo) or run as a non-root user",
				a.name, dir, p, fi.Mode().Perm(), ownerOrMinus(fi))
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

func (a account) canSearch(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	perm := fi.Mode().Perm()
	switch {
	case int(st.Uid) == a.uid:
		return perm&0o100 != 0
	case int(st.Gid) == a.gid || containsInt(a.groups, int(st.Gid)):
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func ownerOf(fi os.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

func ownerOrMinus(fi os.FileInfo) int {
	if uid, ok := ownerOf(fi); ok {
		return uid
	}
	return -1
}

// maxSocketDir is the longest socket directory that fits: the socket path
// dir + "/.s.PGSQL.5432" must stay within sockaddr_un's 107 usable bytes.
const maxSocketDir = 107 - len("/.s.PGSQL.5432")

// socketDir is Dir/run, or /tmp/pulpo-pg-<uid>-<hash of Dir> when that is too
// long for a unix socket path. It depends only on Dir and the account, so
// every process finds the same socket. /tmp rather than $TMPDIR, which may be
// long or, for root, unreachable by the postgres user.
func socketDir(dir string, uid int) string {
	if d := filepath.Join(dir, "run"); len(d) <= maxSocketDir {
		return d
	}
	sum := sha256.Sum256([]byte(dir))
	return filepath.Join("/tmp", fmt.Sprintf("pulpo-pg-%d-%s", uid, hex.EncodeToString(sum[:6])))
}
