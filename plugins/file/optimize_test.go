package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/sdk/sdktest"
)

// TestOptimizedSync follows pulp_file's _should_optimize_sync: a sync is skipped when the
// last one (its details handed back by the host) saw the same url and manifest, unless
// the policy became immediate, mirror became true, or optimize is false.
func TestOptimizedSync(t *testing.T) {
	const url = "https://fixtures.test/opt/PULP_MANIFEST"
	manifest := []byte("a.txt," + sha256Hex("a") + ",1\n")
	first := func(t *testing.T) (*sdktest.Host, abi.SyncResponse) {
		h := sdktest.New(t)
		h.Serve(url, manifest)
		resp, err := h.Sync(abi.SyncRequest{Remote: abi.Remote{URL: url, Policy: abi.PolicyOnDemand}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Skipped || len(resp.Details) == 0 {
			t.Fatalf("first sync: skipped %v, details %s", resp.Skipped, resp.Details)
		}
		return h, resp
	}
	for _, tc := range []struct {
		name     string
		policy   string
		mirror   bool
		options  string
		manifest string
		url      string
		skip     bool
	}{
		{name: "unchanged", policy: abi.PolicyOnDemand, skip: true},
		{name: "to streamed", policy: abi.PolicyStreamed, skip: true},
		{name: "optimize off", policy: abi.PolicyOnDemand, options: `{"optimize":false}`},
		{name: "optimize on", policy: abi.PolicyOnDemand, options: `{"optimize":true}`, skip: true},
		{name: "to immediate", policy: abi.PolicyImmediate},
		{name: "to mirror", policy: abi.PolicyOnDemand, mirror: true},
		{name: "manifest changed", policy: abi.PolicyOnDemand, manifest: "b.txt," + sha256Hex("b") + ",1\n"},
		{name: "url changed", policy: abi.PolicyOnDemand, url: "https://fixtures.test/other/PULP_MANIFEST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, last := first(t)
			u := url
			if tc.url != "" {
				u = tc.url
				h.Serve(u, manifest)
			}
			if tc.manifest != "" {
				h.Serve(u, []byte(tc.manifest))
			}
			h.Emitted = nil
			req := abi.SyncRequest{Remote: abi.Remote{URL: u, Policy: tc.policy}, Mirror: tc.mirror,
				Repository: abi.Repository{LatestVersion: 1, LastSyncDetails: last.Details}}
			if tc.options != "" {
				req.Options = json.RawMessage(tc.options)
			}
			resp, err := h.Sync(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Skipped != tc.skip {
				t.Fatalf("skipped = %v, want %v", resp.Skipped, tc.skip)
			}
			if tc.skip {
				if len(h.Emitted) != 0 {
					t.Errorf("a skipped sync emitted %d units", len(h.Emitted))
				}
				if string(resp.Details) != string(last.Details) {
					t.Errorf("skipped sync details %s, want the last ones %s", resp.Details, last.Details)
				}
				skipped := false
				for _, r := range h.Reports {
					skipped = skipped || r.Code == "sync.was_skipped" && r.State == abi.StateSkipped
				}
				if !skipped {
					t.Errorf("no sync.was_skipped report in %+v", h.Reports)
				}
			} else if len(h.Emitted) != 1 {
				t.Errorf("a full sync emitted %d units, want 1", len(h.Emitted))
			}
		})
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
