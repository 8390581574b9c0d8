// Package bench measures the content app of the real binary against peers
// serving the same files: Go's http.FileServer (in a process of its own) and
// nginx (when installed: apt-get install -y nginx). It runs only when
// benchmarks are asked for:
//
//	go test ./integration/bench/ -run '^$' -bench . -benchtime 2s
//
// Plain `go test ./...` builds nothing here and runs nothing.
package bench

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/pulpo/pulpo/integration/harness"
)

// Environment of the file server child process.
const (
	envFileServerRoot = "PULPO_BENCH_FILESERVER_ROOT"
	envFileServerAddr = "PULPO_BENCH_FILESERVER_ADDR"
)

func TestMain(m *testing.M) {
	if root := os.Getenv(envFileServerRoot); root != "" {
		serveFiles(root, os.Getenv(envFileServerAddr))
		return
	}
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		os.Exit(m.Run()) // no benchmark asked for: do not build pulpo
	}
	harness.Main(m)
}

// serveFiles is the peer: http.FileServer as a process of its own, like
// pulpo and nginx, so it does not share a runtime with the load generator.
func serveFiles(root, addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(root)), ReadHeaderTimeout: 30 * time.Second}
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
