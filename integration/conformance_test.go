package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulpo/pulpo/integration/harness"
)

// conformancePkg is the OCI distribution-spec conformance suite, a tool of
// this module (the `tool` line of go.mod pins its version), so a fresh clone
// builds it from the module proxy like any dependency.
const conformancePkg = "github.com/opencontainers/distribution-spec/conformance"

// conformanceEnv configures the suite: spec 1.1 defaults (pull, push, tag
// listing, referrers, deletes, every data set), plus what pulpo promises
// beyond them: upload cancel and Docker-Content-Digest headers.
var conformanceEnv = []string{
	"OCI_VERSION=1.1",
	"OCI_TLS=disabled",
	"OCI_REPO1=conformance/repo1",
	"OCI_REPO2=conformance/repo2",
	"OCI_API_PULL=true",
	"OCI_API_PUSH=true",
	"OCI_API_TAGS_LIST=true",
	"OCI_API_REFERRER=true",
	"OCI_API_BLOBS_DELETE=true",
	"OCI_API_MANIFESTS_DELETE=true",
	"OCI_API_TAGS_DELETE=true",
	"OCI_API_BLOBS_UPLOAD_CANCEL=true",
	"OCI_API_BLOBS_DIGEST_HEADER=true",
	"OCI_API_MANIFESTS_DIGEST_HEADER=true",
	"OCI_LOG=warn",
}

// TestOCIConformance runs the OCI distribution-spec conformance suite against
// a live pulpo and requires it to pass.
//
// The reports (results.yaml, junit.xml, report.html) and summary.txt go to
// $PULPO_CONFORMANCE_DIR when set (make test sets it to a temporary
// directory and prints summary.txt), else to the test's temporary directory.
// PULPO_CONFORMANCE_REGISTRY=host:port runs the suite against another
// registry instead, e.g. to compare with a peer.
func TestOCIConformance(t *testing.T) {
	t.Parallel()
	root := harness.RepoRoot(t)
	bin := make(chan string, 1)
	go func() { bin <- buildConformance(t, root) }()

	addr := os.Getenv("PULPO_CONFORMANCE_REGISTRY")
	target := addr
	var login []string
	if addr == "" {
		srv := harness.Start(t, harness.Options{Env: []string{"PULPO_LOG_LEVEL=warn"}})
		addr, target = srv.Addr(), "pulpo"
		login = []string{"OCI_USERNAME=" + harness.AdminUsername, "OCI_PASSWORD=" + harness.AdminPassword}
	}
	dir := os.Getenv("PULPO_CONFORMANCE_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := <-bin
	if path == "" {
		t.FailNow() // buildConformance reported why
	}

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path)
	cmd.Dir = dir // no oci-conformance.yaml is read from elsewhere
	cmd.Env = slices.Concat(withoutOCIEnv(os.Environ()), conformanceEnv, login, []string{"OCI_REGISTRY=" + addr, "OCI_RESULTS_DIR=" + dir})
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	elapsed := time.Since(start)

	sum := parseConformance(stdout.String())
	summary := sum.String(target, elapsed, dir)
	if err := os.WriteFile(filepath.Join(dir, "summary.txt"), []byte(summary), 0o644); err != nil {
		t.Error(err)
	}
	t.Log("\n" + summary)
	if _, err := os.Stat(filepath.Join(dir, "results.yaml")); err != nil {
		t.Fatalf("conformance suite wrote no results.yaml (%v); exit %v; stderr:\n%s", err, runErr, tail(stderr.String(), 40))
	}
	if sum.result != "Pass" || runErr != nil || sum.counts["FAIL"] != 0 || sum.counts["Error"] != 0 {
		t.Fatalf("OCI conformance against %s: %s (exit %v); full report in %s", target, sum.result, runErr, dir)
	}
	if sum.counts["Pass"] == 0 {
		t.Fatalf("OCI conformance ran no test; stdout:\n%s", tail(stdout.String(), 40))
	}
}

// buildConformance compiles the suite into a temporary directory and returns
// its path, or "" after reporting the build failure.
func buildConformance(t *testing.T, root string) string {
	out := filepath.Join(t.TempDir(), "conformance")
	cmd := exec.Command("go", "build", "-o", out, conformancePkg)
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("go build %s: %v\n%s", conformancePkg, err, msg)
		return ""
	}
	return out
}

func withoutOCIEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "OCI_") {
			out = append(out, kv)
		}
	}
	return out
}

// conformanceSummary is what the suite printed: its result, the counts by
// status and the failing tests with their first error.
type conformanceSummary struct {
	result   string
	counts   map[string]int
	order    []string
	failures []string
	apis     []string // "Blob chunked: FAIL" lines of the API conformance table that did not pass
}

var (
	countLine  = regexp.MustCompile(`^\s+(Disabled|Skip|Pass|FAIL|Error|Total)\.*:\s+(\d+)$`)
	resultLine = regexp.MustCompile(`: (FAIL|Error)$`)
	tableLine  = regexp.MustCompile(`^\s+(.+?)\.*:\s+(\S+)$`)
)

// parseConformance reads the suite's stdout report: a tree of
// "name: status" lines whose failing leaves are followed by " - error"
// lines, the "OCI Conformance Result" with counts, then the API and data
// conformance tables.
func parseConformance(out string) conformanceSummary {
	s := conformanceSummary{counts: map[string]int{}}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	section := "tree"
	for i, line := range lines {
		switch {
		case strings.HasPrefix(line, "OCI Conformance Result: "):
			s.result = strings.TrimPrefix(line, "OCI Conformance Result: ")
			section = "counts"
			continue
		case line == "API conformance:":
			section = "apis"
			continue
		case line == "Data conformance:" || line == "Configuration:":
			section = "other"
			continue
		}
		switch section {
		case "tree":
			if !resultLine.MatchString(line) || i+1 >= len(lines) || !strings.HasPrefix(strings.TrimSpace(lines[i+1]), "- ") {
				continue // not a failing leaf
			}
			name := strings.TrimSpace(line[:strings.LastIndex(line, ":")])
			s.failures = append(s.failures, strings.TrimPrefix(name, "OCI Conformance Test/")+": "+strings.TrimPrefix(strings.TrimSpace(lines[i+1]), "- "))
		case "counts":
			if m := countLine.FindStringSubmatch(line); m != nil {
				var n int
				fmt.Sscan(m[2], &n)
				s.counts[m[1]] = n
				s.order = append(s.order, m[1])
			}
		case "apis":
			if m := tableLine.FindStringSubmatch(line); m != nil && m[2] != "Pass" {
				s.apis = append(s.apis, m[1]+": "+m[2])
			}
		}
	}
	return s
}

// String is the summary make test prints.
func (s conformanceSummary) String(target string, elapsed time.Duration, dir string) string {
	var b strings.Builder
	result := s.result
	if result == "" {
		result = "no result (the suite did not report)"
	}
	fmt.Fprintf(&b, "OCI distribution-spec conformance against %s: %s in %.1fs", target, result, elapsed.Seconds())
	for _, k := range s.order {
		fmt.Fprintf(&b, ", %s %d", strings.ToLower(k), s.counts[k])
	}
	fmt.Fprintf(&b, "\n  report: %s/report.html\n", dir)
	if len(s.apis) > 0 {
		fmt.Fprintf(&b, "  APIs not passing: %s\n", strings.Join(s.apis, "; "))
	}
	const show = 25
	for i, f := range s.failures {
		if i == show {
			fmt.Fprintf(&b, "  ... and %d more failing tests (see the report)\n", len(s.failures)-show)
			break
		}
		fmt.Fprintf(&b, "  FAIL %s\n", truncateLine(f, 200))
	}
	return b.String()
}

func truncateLine(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
