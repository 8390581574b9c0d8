// Package abitest is the conformance kit of the Pulpo plugin ABI: checks that any plugin,
// in any language, honours abi/spec/v1.md.
//
// It needs something that can run a plugin, which package abi must not depend on, so it
// asks for a [Guest]: the host's adapter is host/plugin/plugintest.Conformance, which loads
// a .wasm with the real runtime and calls [Run]. The checks:
//
//   - module: the binary's marker, exports and imports (abi/wasmcheck);
//   - describe: the output decodes, validates, matches the marker's version, and obliges
//     only exports the module has; two calls give the same bytes;
//   - errors: every callable export answers malformed input with an ABI error of code
//     invalid_input (not a trap, not success).
//
// Package abitest imports only the standard library and abi.
package abitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/abi/wasmcheck"
)

// Guest runs exports of one loaded plugin.
type Guest interface {
	// Call runs export with input and returns its output, or an error. A plugin-reported
	// error must be (or wrap) an *abi.Error.
	Call(ctx context.Context, export string, input []byte) ([]byte, error)
}

// Run runs the conformance checks as subtests of t.
func Run(t *testing.T, wasm []byte, g Guest) {
	t.Helper()
	var res wasmcheck.Result
	t.Run("module", func(t *testing.T) {
		var err error
		if res, err = wasmcheck.ParseAndCheck(wasm, abi.Current()); err != nil {
			t.Fatal(err)
		}
	})
	if t.Failed() {
		return
	}
	ctx := context.Background()
	t.Run("describe", func(t *testing.T) {
		in, _ := json.Marshal(abi.DescribeRequest{Host: abi.HostInfo{Name: "abitest", Version: "0", ABIVersion: abi.Current().String()}})
		out, err := g.Call(ctx, abi.ExportDescribe, in)
		if err != nil {
			t.Fatalf("describe: %v", err)
		}
		if _, err := CheckDescribe(out, res); err != nil {
			t.Fatal(err)
		}
		again, err := g.Call(ctx, abi.ExportDescribe, in)
		if err != nil {
			t.Fatalf("second describe: %v", err)
		}
		if !bytes.Equal(out, again) {
			t.Error("describe is not stable: two calls returned different documents")
		}
	})
	t.Run("errors", func(t *testing.T) {
		for _, e := range res.Exports {
			if e == abi.ExportDescribe {
				continue
			}
			_, err := g.Call(ctx, e, []byte("this is not JSON"))
			if cerr := CheckError(err, abi.CodeInvalidInput); cerr != nil {
				t.Errorf("%s with malformed input: %v", e, cerr)
			}
		}
	})
}

// CheckDescribe decodes a describe output and checks it against the spec and against the
// module's static facts.
func CheckDescribe(out []byte, mod wasmcheck.Result) (abi.Describe, error) {
	var d abi.Describe
	if err := json.Unmarshal(out, &d); err != nil {
		return d, fmt.Errorf("describe output does not decode: %w", err)
	}
	if err := d.Validate(); err != nil {
		return d, fmt.Errorf("describe is invalid: %w", err)
	}
	if d.ABIVersion != mod.Version.String() {
		return d, fmt.Errorf("describe says ABI %s, the marker export says %s", d.ABIVersion, mod.Version)
	}
	var errs []error
	for _, e := range d.RequiredExports() {
		if !mod.Has(e) {
			errs = append(errs, fmt.Errorf("describe obliges export %s, which the module lacks", e))
		}
	}
	return d, errors.Join(errs...)
}

// CheckError checks that err is an ABI error with the given code.
func CheckError(err error, code string) error {
	if err == nil {
		return errors.New("succeeded, want an error")
	}
	var ae *abi.Error
	if !errors.As(err, &ae) {
		return fmt.Errorf("want an ABI error {code, message}, got %v", err)
	}
	if ae.Code != code {
		return fmt.Errorf("error code %q, want %q (%v)", ae.Code, code, ae)
	}
	if ae.Message == "" {
		return fmt.Errorf("error %q has no message", ae.Code)
	}
	return nil
}
