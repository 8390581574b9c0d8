// Package s3test gives tests a real S3-compatible server and buckets on it.
//
// The server is the one named by PULPO_TEST_S3_ENDPOINT (with PULPO_TEST_S3_ACCESS_KEY,
// PULPO_TEST_S3_SECRET_KEY and optionally PULPO_TEST_S3_REGION) when set, else a Versity
// S3 Gateway (versitygw, Apache-2.0) with its posix backend, which this test binary starts
// on first use on a loopback port, over a temporary directory, and stops in Main.
//
// versitygw is built from the Go module proxy with `go install` (pinned to
// [ServerVersion]) into the user cache directory, <cache>/pulpo/s3test/versitygw-<version>,
// once per machine. The first build costs about five minutes of CPU (measured at 4 to 8
// minutes of wall time on a shared two-core machine); later runs start the cached binary
// in well under a second. PULPO_TEST_S3_SERVER may name a versitygw binary to use instead.
// MinIO, the better-known choice, was tried first: its build had not finished after 9
// minutes on the same machine, too long for `make test` on a new one.
//
// When no server can be had, tests that need one skip, except when the CI environment
// variable is set: then they fail, so CI cannot pass by skipping (as in host/db/dbtest).
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { s3test.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		t.Parallel()
//		d := s3test.NewDriver(t, nil) // a *s3.Driver over a new, empty bucket
//		...
//	}
//
// Tests of package s3 itself that use s3test must be in package s3_test, because
// s3test imports s3.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/pulpo/pulpo/host/storage/s3"
)

// Environment variables that point the tests at an existing server.
const (
	EnvEndpoint  = "PULPO_TEST_S3_ENDPOINT"
	EnvAccessKey = "PULPO_TEST_S3_ACCESS_KEY"
	EnvSecretKey = "PULPO_TEST_S3_SECRET_KEY"
	EnvRegion    = "PULPO_TEST_S3_REGION"
	// EnvServer names a versitygw binary to start instead of building one.
	EnvServer = "PULPO_TEST_S3_SERVER"
)

// The server that is built and started when EnvEndpoint is not set.
const (
	ServerPackage = "github.com/versity/versitygw/cmd/versitygw"
	ServerVersion = "v1.8.0"
)

const (
	buildTimeout = 8 * time.Minute // under go test's default 10m, with room for the tests
	startTimeout = 30 * time.Second
	healthPath   = "/pulpo-s3test-health"
)

// Server is a running S3-compatible server.
type Server struct {
	Endpoint  string
	Region    string
	AccessKey string
	SecretKey string
	// Client is a path-style client with the server's credentials, for setting up
	// buckets and inspecting them behind a driver's back.
	Client *s3api.Client
}

var (
	once      sync.Once
	shared    *Server
	sharedErr error
	proc      *process // started by this binary, stopped by Main
)

// Main runs the tests, stops the server if this binary started one, and exits with the
// tests' code. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if proc != nil {
		proc.stop()
	}
	os.Exit(code)
}

// Start returns the test server, starting it on first use. Without one it skips t, or
// fails it when CI is set.
func Start(t testing.TB) *Server {
	t.Helper()
	once.Do(func() { shared, sharedErr = start() })
	if sharedErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("s3test: no S3 server for tests and CI is set: %v", sharedErr)
		}
		t.Skipf("s3test: no S3 server for tests (set %s, or let the test build %s@%s with the go command): %v",
			EnvEndpoint, ServerPackage, ServerVersion, sharedErr)
	}
	return shared
}

func start() (*Server, error) {
	if ep := os.Getenv(EnvEndpoint); ep != "" {
		return newServer(ep, os.Getenv(EnvRegion), os.Getenv(EnvAccessKey), os.Getenv(EnvSecretKey)), nil
	}
	bin := os.Getenv(EnvServer)
	if bin == "" {
		var err error
		if bin, err = buildServer(); err != nil {
			return nil, err
		}
	}
	p, err := startProcess(bin)
	if err != nil {
		return nil, err
	}
	proc = p
	return newServer(p.endpoint, s3.DefaultRegion, p.accessKey, p.secretKey), nil
}

func newServer(endpoint, region, accessKey, secretKey string) *Server {
	if region == "" {
		region = s3.DefaultRegion
	}
	creds := aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey, Source: "s3test"}
	client := s3api.New(s3api.Options{
		Region:       region,
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return creds, nil
		}),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	return &Server{Endpoint: endpoint, Region: region, AccessKey: accessKey, SecretKey: secretKey, Client: client}
}

// Config returns a driver configuration for bucket on s.
func (s *Server) Config(bucket string) s3.Config {
	return s3.Config{
		Endpoint:  s.Endpoint,
		Region:    s.Region,
		Bucket:    bucket,
		AccessKey: s.AccessKey,
		SecretKey: s.SecretKey,
		PathStyle: true,
	}
}

// NewBucket creates an empty bucket with a random name and, when t ends, empties it
// (objects and unfinished multipart uploads) and deletes it.
func (s *Server) NewBucket(t testing.TB) string {
	t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	name := "pulpo-test-" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.Client.CreateBucket(ctx, &s3api.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatalf("s3test: create bucket %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := s.removeBucket(name); err != nil {
			t.Errorf("s3test: remove bucket %s: %v", name, err)
		}
	})
	return name
}

func (s *Server) removeBucket(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	uploads, err := s.Uploads(ctx, name, "")
	if err != nil {
		return err
	}
	for _, u := range uploads {
		if _, err := s.Client.AbortMultipartUpload(ctx, &s3api.AbortMultipartUploadInput{Bucket: &name, Key: u.Key, UploadId: u.UploadId}); err != nil {
			return err
		}
	}
	// Every version, so that buckets a test made versioned can go too; in an unversioned
	// bucket each object is its one version.
	pages := s3api.NewListObjectVersionsPaginator(s.Client, &s3api.ListObjectVersionsInput{Bucket: &name})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return err
		}
		var ids []types.ObjectIdentifier
		for _, v := range page.Versions {
			ids = append(ids, types.ObjectIdentifier{Key: v.Key, VersionId: v.VersionId})
		}
		for _, m := range page.DeleteMarkers {
			ids = append(ids, types.ObjectIdentifier{Key: m.Key, VersionId: m.VersionId})
		}
		for _, id := range ids {
			if _, err := s.Client.DeleteObject(ctx, &s3api.DeleteObjectInput{Bucket: &name, Key: id.Key, VersionId: id.VersionId}); err != nil {
				return err
			}
		}
	}
	_, err = s.Client.DeleteBucket(ctx, &s3api.DeleteBucketInput{Bucket: &name})
	return err
}

// Uploads lists the multipart uploads in progress in bucket under prefix, so a test can
// check that a failed Put left none behind.
func (s *Server) Uploads(ctx context.Context, bucket, prefix string) ([]types.MultipartUpload, error) {
	var all []types.MultipartUpload
	in := &s3api.ListMultipartUploadsInput{Bucket: &bucket, Prefix: &prefix}
	for {
		out, err := s.Client.ListMultipartUploads(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list multipart uploads: %w", err)
		}
		all = append(all, out.Uploads...)
		if !aws.ToBool(out.IsTruncated) {
			return all, nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// NewDriver returns a driver over a new bucket (see NewBucket) on the test server,
// after edit, if not nil, has adjusted its configuration.
func NewDriver(t testing.TB, edit func(*s3.Config)) *s3.Driver {
	t.Helper()
	s := Start(t)
	cfg := s.Config(s.NewBucket(t))
	if edit != nil {
		edit(&cfg)
	}
	d, err := s3.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	return d
}

// BuildServer returns the path of the cached versitygw binary tests start, building it
// first if needed (see the package documentation). `make deps` runs it through
// ./host/storage/s3/s3test/prebuild, so the build is not charged to the test timeout of
// whichever package first needs a server.
func BuildServer() (string, error) { return buildServer() }

// buildServer returns the cached versitygw binary, building it first if needed. A file
// lock keeps test binaries that start together from building it twice.
func buildServer() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache directory for the server binary: %w", err)
	}
	dir := filepath.Join(cache, "pulpo", "s3test", "versitygw-"+ServerVersion)
	bin := filepath.Join(dir, "versitygw")
	if isExecutable(bin) {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	unlock, err := lockFile(ctx, dir+".lock")
	if err != nil {
		return "", fmt.Errorf("lock %s.lock: %w", dir, err)
	}
	defer unlock()
	if isExecutable(bin) { // built by another test binary while we waited
		return bin, nil
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building the server needs the go command: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintf(os.Stderr, "s3test: building %s@%s into %s (once per machine; a few minutes)\n", ServerPackage, ServerVersion, dir)
	began := time.Now()
	cmd := exec.CommandContext(ctx, goCmd, "install", ServerPackage+"@"+ServerVersion)
	// A module-mode build of the pinned version, with its own go.mod's dependency
	// versions: no workspace, and no toolchain download, which would fail offline.
	// Otherwise the settings are go's defaults, so the standard library and modules
	// already in the build cache are reused.
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOWORK=off", "GO111MODULE=on", "GOTOOLCHAIN=local", "GOFLAGS=-buildvcs=false")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %w\n%s", ServerPackage, ServerVersion, err, tail(out, 4000))
	}
	if err := os.Rename(filepath.Join(tmp, "versitygw"), bin); err != nil {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "s3test: built versitygw in %v\n", time.Since(began).Round(time.Second))
	return bin, nil
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// lockFile takes an exclusive flock on path, waiting until ctx is done. Closing the file
// (unlock) or the process dying releases it.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// process is a versitygw started by this binary.
type process struct {
	cmd       *exec.Cmd
	dir       string // data, removed by stop
	endpoint  string
	accessKey string
	secretKey string
	exited    chan struct{}
}

// startProcess starts bin over a new temporary directory on a free loopback port and
// waits until it answers.
func startProcess(bin string) (*process, error) {
	dir, err := os.MkdirTemp("", "pulpo-s3test-")
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		return nil, err
	}
	// A port picked by the kernel and released is taken again only by bad luck; the
	// health check would then fail and the error says so.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	p := &process{
		dir:       dir,
		endpoint:  "http://" + addr,
		accessKey: "pulpo-test",
		secretKey: hex.EncodeToString(key),
		exited:    make(chan struct{}),
	}
	logPath := filepath.Join(dir, "server.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	defer logFile.Close()
	// The root account comes from the environment rather than flags, so the secret does
	// not show in ps. The log goes to a file: holding our stdout would keep go test
	// waiting for the server.
	// Metadata goes to a sidecar directory rather than extended attributes, which a
	// tmpfs /tmp may lack; a versioning directory lets tests enable bucket versioning.
	p.cmd = exec.Command(bin, "--port", addr, "--health", healthPath, "--quiet",
		"posix", "--sidecar", filepath.Join(dir, "meta"), "--versioning-dir", filepath.Join(dir, "versions"), root)
	p.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+p.accessKey, "ROOT_SECRET_ACCESS_KEY="+p.secretKey)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	setParentDeathSignal(p.cmd)
	for _, sub := range []string{"meta", "versions"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
	if err := p.cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	if err := removeAtExit(dir); err != nil {
		p.stop()
		return nil, err
	}
	if err := p.waitHealthy(); err != nil {
		p.stop()
		log, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("%s did not start: %w\n%s", bin, err, tail(log, 4000))
	}
	return p, nil
}

// removeAtExit removes dir when this process exits, however it exits: test binaries whose
// TestMain ends in another package's Main (such as the integration tests') never run
// stop, and the server is then ended by its parent-death signal alone. A shell in its own
// session waits for the end of its stdin, which the kernel closes when this process dies.
func removeAtExit(dir string) error {
	cmd := exec.Command("/bin/sh", "-c", `read -r _ || :; sleep 1; rm -rf "$1"`, "pulpo-s3test-cleanup", dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	w, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start cleanup process: %w", err)
	}
	cleanupPipes = append(cleanupPipes, w) // never written; closed by the kernel at exit
	go func() { _ = cmd.Wait() }()         // reaps the shell if it ends early
	return nil
}

// cleanupPipes keeps the stdin of every removeAtExit shell open until this process exits.
var cleanupPipes []io.Closer

func (p *process) waitHealthy() error {
	deadline := time.Now().Add(startTimeout)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(p.endpoint + healthPath)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("health check: %s", resp.Status)
		}
		select {
		case <-p.exited:
			return fmt.Errorf("exited: %v", p.cmd.ProcessState)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not healthy after %v: %w", startTimeout, err)
		}
	}
}

// stop terminates the server, killing it if it does not exit within five seconds, and
// removes its data.
func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	if err := os.RemoveAll(p.dir); err != nil && !strings.Contains(err.Error(), "no such file") {
		fmt.Fprintln(os.Stderr, "s3test:", err)
	}
}
