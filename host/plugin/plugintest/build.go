package plugintest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ModuleRoot returns the directory of the main module's go.mod.
func ModuleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module")
	}
	return filepath.Dir(mod), nil
}

// BuildGo builds the Go plugin package pkg (a path like "./plugins/testdata/goplugin",
// relative to the module root) into out with the standard toolchain:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o out pkg
func BuildGo(ctx context.Context, pkg, out string) error {
	root, err := ModuleRoot(ctx)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-buildmode=c-shared", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build %s: %w\n%s", pkg, err, stderr.String())
	}
	return nil
}

// ErrNoClang is returned by BuildC when clang or its WebAssembly support is missing.
var ErrNoClang = fmt.Errorf("clang with wasm32-wasi support not found (Debian: apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32)")

// BuildC compiles one C file into a WASI reactor module with clang, adding flags (such as
// -DNAME) to:
//
//	clang --target=wasm32-wasi -O2 -mexec-model=reactor -o out src
//
// The Debian packages clang, lld, wasi-libc and libclang-rt-<version>-dev-wasm32 provide the
// toolchain. BuildC returns an error wrapping ErrNoClang when clang is not installed.
func BuildC(ctx context.Context, src, out string, flags ...string) error {
	clang, err := exec.LookPath("clang")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoClang, err)
	}
	args := append([]string{"--target=wasm32-wasi", "-O2", "-mexec-model=reactor", "-Wall", "-Werror", "-o", out}, flags...)
	cmd := exec.CommandContext(ctx, clang, append(args, src)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := stderr.String()
		if strings.Contains(msg, "libclang_rt.builtins-wasm32") || strings.Contains(msg, "stdio.h' file not found") ||
			strings.Contains(msg, "unable to create target") {
			return fmt.Errorf("%w: %s", ErrNoClang, strings.TrimSpace(msg))
		}
		return fmt.Errorf("clang %s: %w\n%s", src, err, msg)
	}
	return nil
}
