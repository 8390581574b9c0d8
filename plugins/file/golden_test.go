package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/sdk/sdktest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// TestGoldenSync syncs testdata/golden/PULP_MANIFEST (comments, CRLF, commas, spaces,
// subdirectories, non-ASCII names, an empty file, a repeated line) and compares the
// declarative content it emits with testdata/golden/emitted.json. Run
// `go test ./plugins/file/ -run TestGoldenSync -update` to accept a change.
func TestGoldenSync(t *testing.T) {
	h := sdktest.New(t)
	const url = "https://fixtures.test/golden/PULP_MANIFEST"
	h.Serve(url, readFixture(t, "golden/PULP_MANIFEST"))
	if _, err := h.Sync(abi.SyncRequest{Remote: abi.Remote{URL: url, Policy: abi.PolicyImmediate}}); err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(h.Emitted, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden := filepath.Join("testdata", "golden", "emitted.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("emitted content differs from %s (run with -update to accept):\n%s", golden, got)
	}
}
