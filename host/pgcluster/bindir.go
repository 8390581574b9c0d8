package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// ErrNoBinaries is returned (wrapped) by FindBinDir and Start when no
// PostgreSQL server binaries are installed.
var ErrNoBinaries = errors.New("no PostgreSQL server binaries found")

// programs are the server binaries a cluster needs.
var programs = []string{"initdb", "pg_ctl", "postgres"}

// FindBinDir finds a directory holding initdb, pg_ctl and postgres. It looks,
// in order, at PATH (following symlinks such as /usr/local/bin/initdb), at
// `pg_config --bindir`, and at the highest version of /usr/lib/postgresql/*/bin
// (Debian, Ubuntu), /usr/pgsql-*/bin (RHEL) and /usr/local/pgsql/bin.
func FindBinDir() (string, error) {
	var looked []string

	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		if d := filepath.Dir(p); hasPrograms(d) {
			return d, nil
		}
		looked = append(looked, "PATH (found "+p+" but not pg_ctl and postgres beside it)")
	} else {
		looked = append(looked, "PATH")
	}

	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		d := strings.TrimSpace(string(out))
		if hasPrograms(d) {
			return d, nil
		}
		looked = append(looked, "`pg_config --bindir` ("+d+")")
	} else {
		looked = append(looked, "`pg_config --bindir` (no pg_config)")
	}

	for _, pattern := range []string{"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin"} {
		looked = append(looked, pattern)
		dirs, _ := filepath.Glob(pattern)
		sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
		for _, d := range dirs {
			if hasPrograms(d) {
				return d, nil
			}
		}
	}
	looked = append(looked, "/usr/local/pgsql/bin")
	if hasPrograms("/usr/local/pgsql/bin") {
		return "/usr/local/pgsql/bin", nil
	}
	return "", fmt.Errorf("pgcluster: %w (initdb, pg_ctl, postgres); looked in %s; install them with `apt-get install -y postgresql` (Debian, Ubuntu) or point to an existing server with a database URL",
		ErrNoBinaries, strings.Join(looked, ", "))
}

// chooseBinDir picks the binaries for pgdata: explicit, else the installed
// version matching an existing cluster, else FindBinDir.
func chooseBinDir(explicit, pgdata string) (string, error) {
	if explicit != "" {
		if !hasPrograms(explicit) {
			return "", fmt.Errorf("pgcluster: %w in %s (initdb, pg_ctl, postgres)", ErrNoBinaries, explicit)
		}
		return explicit, nil
	}
	if v, err := os.ReadFile(filepath.Join(pgdata, "PG_VERSION")); err == nil {
		for _, d := range []string{"/usr/lib/postgresql/" + strings.TrimSpace(string(v)) + "/bin", "/usr/pgsql-" + strings.TrimSpace(string(v)) + "/bin"} {
			if hasPrograms(d) {
				return d, nil
			}
		}
	}
	return FindBinDir()
}

func hasPrograms(dir string) bool {
	for _, p := range programs {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

var digits = regexp.MustCompile(`\d+`)

// versionOf extracts the major version from a path like /usr/lib/postgresql/15/bin.
func versionOf(dir string) int {
	n, _ := strconv.Atoi(digits.FindString(dir))
	return n
}

var serverVersion = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.\d+)?`)

// serverMajor runs `postgres --version` and returns the major version ("15").
func serverMajor(ctx context.Context, binDir string) (string, error) {
	out, err := exec.CommandContext(ctx, filepath.Join(binDir, "postgres"), "--version").Output()
	if err != nil {
		return "", fmt.Errorf("pgcluster: %s --version: %w", filepath.Join(binDir, "postgres"), err)
	}
	m := serverVersion.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("pgcluster: unexpected `postgres --version` output %q", strings.TrimSpace(string(out)))
	}
	return string(m[1]), nil
}
